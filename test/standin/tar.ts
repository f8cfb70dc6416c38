/**
 * Reads a ustar archive (what `PUT /jobs/{id}/input` carries): regular files and directories,
 * with the POSIX `prefix` field for long names. Anything else is refused, as are paths that
 * would escape the sandbox.
 */
export type TarEntry = { name: string; type: 'file' | 'dir'; mode: number; data: Buffer };

export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive blocks
    const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const octal = (start: number, length: number) => parseInt(field(start, length).trim() || '0', 8);
    const checksum = octal(148, 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    if (sum !== checksum) throw new Error(`not a tar archive (bad header checksum at byte ${offset})`);
    const prefix = field(345, 155);
    const name = (prefix ? `${prefix}/` : '') + field(0, 100);
    const size = octal(124, 12);
    const typeFlag = String.fromCharCode(header[156]!);
    const data = archive.subarray(offset + 512, offset + 512 + size);
    if (data.length < size) throw new Error(`tar archive is truncated in ${name}`);
    if (name.split('/').includes('..') || name.startsWith('/')) throw new Error(`tar entry ${name} leaves the sandbox`);
    if (typeFlag === '0' || typeFlag === '\0') entries.push({ name, type: 'file', mode: octal(100, 8), data: Buffer.from(data) });
    else if (typeFlag === '5') entries.push({ name: name.replace(/\/$/, ''), type: 'dir', mode: octal(100, 8), data: Buffer.alloc(0) });
    else throw new Error(`tar entry ${name} has unsupported type '${typeFlag}'`);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}
