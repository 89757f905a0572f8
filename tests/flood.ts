/**
 * Checksummed messages for the kill -9 harness: producer id, sequence number,
 * a payload whose length and bytes follow from both, and an FNV-1a checksum
 * of everything before it. A torn, forged or misplaced message fails check().
 */
const HEADER = 12;

function fnv1a(bytes: Uint8Array, end: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

export function floodMessage(producer: number, seq: number): Uint8Array {
  const len = (seq * 7 + producer) % 200;
  const msg = new Uint8Array(HEADER + len + 4);
  const view = new DataView(msg.buffer);
  view.setUint32(0, producer, true);
  view.setUint32(4, seq, true);
  view.setUint32(8, len, true);
  for (let i = 0; i < len; i++) msg[HEADER + i] = (seq + i * 31 + producer) & 0xff;
  view.setUint32(HEADER + len, fnv1a(msg, HEADER + len), true);
  return msg;
}

/** The message's producer and sequence number, or null when it is not intact. */
export function checkFlood(msg: Uint8Array): { producer: number; seq: number } | null {
  if (msg.byteLength < HEADER + 4) return null;
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const len = view.getUint32(8, true);
  if (msg.byteLength !== HEADER + len + 4) return null;
  if (view.getUint32(HEADER + len, true) !== fnv1a(msg, HEADER + len)) return null;
  const producer = view.getUint32(0, true), seq = view.getUint32(4, true);
  if (len !== (seq * 7 + producer) % 200) return null;
  return { producer, seq };
}
