// readonly.ts: the read-only example plugin in AssemblyScript. It denies object writes (any
// method but GET and HEAD, on a request that names a key) in buckets whose name starts with
// "archive-", and passes the rest.
@external("weir_v1", "input_read")
declare function input_read(ptr: usize, limit: u32): u32;
@external("weir_v1", "reason_write")
declare function reason_write(ptr: usize, len: u32): void;

export function weir_abi_version(): u32 {
  return 0x00010000; // ABI 1.0
}

// String slots of the record: slot i is a u32 offset (from the record's first byte) and a
// u32 length at 40 + 8*i.
const BUCKET: u32 = 3, KEY: u32 = 6, METHOD: u32 = 10;
const PASS: u32 = 0, DENY: u32 = 2;

let record = new ArrayBuffer(4096);
const reason = String.UTF8.encode("objects in archive-* buckets are read-only");

function startsWith(rec: usize, slot: u32, text: string, whole: bool): bool {
  const off = rec + load<u32>(rec + 40 + 8 * slot);
  const len = load<u32>(rec + 44 + 8 * slot);
  if (len < <u32>text.length || (whole && len != <u32>text.length)) return false;
  for (let i = 0; i < text.length; i++) {
    if (<i32>load<u8>(off + i) != text.charCodeAt(i)) return false;
  }
  return true;
}

export function weir_decide(): u32 {
  let n = input_read(changetype<usize>(record), record.byteLength);
  if (n > <u32>record.byteLength) {
    record = new ArrayBuffer(n);
    input_read(changetype<usize>(record), n);
  }
  const rec = changetype<usize>(record);
  if (load<u32>(rec + 44 + 8 * KEY) == 0) return PASS; // no key: not an object write
  if (startsWith(rec, METHOD, "GET", true) || startsWith(rec, METHOD, "HEAD", true)) return PASS;
  if (!startsWith(rec, BUCKET, "archive-", false)) return PASS;
  reason_write(changetype<usize>(reason), reason.byteLength);
  return DENY;
}
