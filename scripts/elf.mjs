// Reads what the prebuilt libraries are checked for from a 64-bit
// little-endian ELF shared object (x86_64, aarch64): the machine, the
// libraries it needs, the symbol versions it needs (GLIBC_2.x), the symbols
// it exports, the undefined symbols that name no version, and whether it
// has thread-local storage. No binutils needed (objdump -T and readelf -V
// show the same).

const SHT_DYNSYM = 11;
const SHT_DYNAMIC = 6;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;
const PT_TLS = 7;
const DT_NEEDED = 1;
const STB_WEAK = 2;
const STV_DEFAULT = 0;

export const MACHINES = { 62: "x86_64", 183: "aarch64" };

/** Parses `buf` (a Uint8Array of the whole file). Throws on anything but ELF64 LE. */
export function readElf(buf) {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint32(0, false) !== 0x7f454c46) throw new Error("not an ELF file");
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error("not a 64-bit little-endian ELF file");
  const u16 = (o) => v.getUint16(o, true);
  const u32 = (o) => v.getUint32(o, true);
  const u64 = (o) => Number(v.getBigUint64(o, true));
  const cstr = (o) => {
    let end = o;
    while (buf[end] !== 0) end++;
    return new TextDecoder().decode(buf.subarray(o, end));
  };

  const machine = MACHINES[u16(0x12)] ?? `machine ${u16(0x12)}`;
  const phoff = u64(0x20), shoff = u64(0x28);
  const phentsize = u16(0x36), phnum = u16(0x38), shentsize = u16(0x3a), shnum = u16(0x3c);

  let tls = false;
  for (let i = 0; i < phnum; i++) if (u32(phoff + i * phentsize) === PT_TLS) tls = true;

  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({ type: u32(o + 4), offset: u64(o + 24), size: u64(o + 32), link: u32(o + 40), entsize: u64(o + 56) });
  }
  const str = (section, off) => cstr(sections[section.link].offset + off);
  const find = (type) => sections.find((s) => s.type === type);

  const needed = [];
  const dynamic = find(SHT_DYNAMIC);
  if (dynamic) {
    for (let o = dynamic.offset; o < dynamic.offset + dynamic.size; o += 16) {
      if (u64(o) === DT_NEEDED) needed.push(str(dynamic, u64(o + 8)));
    }
  }

  // Version needs: file -> version names, and version index -> name.
  const versions = [];
  const versionByIndex = new Map();
  const verneed = find(SHT_GNU_VERNEED);
  if (verneed) {
    let o = verneed.offset;
    for (;;) {
      const cnt = u16(o + 2), file = str(verneed, u32(o + 4)), aux = u32(o + 8), next = u32(o + 12);
      let a = o + aux;
      for (let i = 0; i < cnt; i++) {
        const name = str(verneed, u32(a + 8));
        versions.push({ file, name });
        versionByIndex.set(u16(a + 6), name);
        const an = u32(a + 12);
        if (!an) break;
        a += an;
      }
      if (!next) break;
      o += next;
    }
  }

  const exports = [], unversioned = [];
  const dynsym = find(SHT_DYNSYM);
  const versym = find(SHT_GNU_VERSYM);
  if (dynsym) {
    const count = dynsym.size / (dynsym.entsize || 24);
    for (let i = 1; i < count; i++) {
      const o = dynsym.offset + i * 24;
      const name = str(dynsym, u32(o));
      const bind = buf[o + 4] >> 4, visibility = buf[o + 5] & 3, shndx = u16(o + 6);
      if (shndx !== 0) {
        if (visibility === STV_DEFAULT && name) exports.push(name);
      } else if (bind !== STB_WEAK) {
        const index = versym ? u16(versym.offset + i * 2) & 0x7fff : 1;
        if (!versionByIndex.has(index)) unversioned.push(name);
      }
    }
  }
  return { machine, needed, versions, exports, unversioned, tls };
}

/** The highest GLIBC_x.y that `elf` needs, as [x, y], or null. */
export function highestGlibc(elf) {
  let best = null;
  for (const { name } of elf.versions) {
    const m = /^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$/.exec(name);
    if (!m) continue;
    const v = [Number(m[1]), Number(m[2])];
    if (!best || v[0] > best[0] || (v[0] === best[0] && v[1] > best[1])) best = v;
  }
  return best;
}
