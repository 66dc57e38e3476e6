/**
 * PostgreSQL's binary COPY format, written straight into Buffers: no escaping, no per-value parameter
 * objects, strings encoded to UTF-8 by Node's native encoder directly into place.
 *
 * Layout (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"): an 11-byte signature,
 * a 32-bit flags field and a 32-bit header-extension length; then per row a 16-bit field count and per
 * field a 32-bit byte length (-1 for NULL) followed by the value in the type's binary send format; a
 * 16-bit -1 ends the data.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Bytes a field may take at most in UTF-8 per UTF-16 code unit. */
const MAX_UTF8_PER_UNIT = 3;

export class BinaryCopyWriter {
  private buffer: Buffer;
  private offset = 0;

  /** `chunkBytes`: the size at which `full` says a chunk is ready to send. */
  constructor(private readonly chunkBytes = 256 * 1024) {
    this.buffer = Buffer.allocUnsafe(chunkBytes + 64 * 1024);
  }

  /** True once the bytes written since the last `take` reach the chunk size. */
  get full(): boolean {
    return this.offset >= this.chunkBytes;
  }

  header(): void {
    this.reserve(SIGNATURE.length + 8);
    SIGNATURE.copy(this.buffer, this.offset);
    this.offset += SIGNATURE.length;
    this.buffer.writeInt32BE(0, this.offset);
    this.buffer.writeInt32BE(0, this.offset + 4);
    this.offset += 8;
  }

  row(fields: number): void {
    this.reserve(2);
    this.buffer.writeInt16BE(fields, this.offset);
    this.offset += 2;
  }

  null(): void {
    this.reserve(4);
    this.buffer.writeInt32BE(-1, this.offset);
    this.offset += 4;
  }

  /** A `text` value: UTF-8, which PostgreSQL checks; the caller has removed NUL and lone surrogates. */
  text(value: string | null): void {
    if (value === null) return this.null();
    this.reserve(4 + value.length * MAX_UTF8_PER_UNIT);
    const written = this.buffer.write(value, this.offset + 4, 'utf8');
    this.buffer.writeInt32BE(written, this.offset);
    this.offset += 4 + written;
  }

  /** A `text` value already encoded: UTF-8 bytes, valid and free of NUL (the caller's promise). */
  bytes(value: Uint8Array): void {
    this.reserve(4 + value.length);
    this.buffer.writeInt32BE(value.length, this.offset);
    this.buffer.set(value, this.offset + 4);
    this.offset += 4 + value.length;
  }

  boolean(value: boolean): void {
    this.reserve(5);
    this.buffer.writeInt32BE(1, this.offset);
    this.buffer[this.offset + 4] = value ? 1 : 0;
    this.offset += 5;
  }

  int2(value: number | null): void {
    if (value === null) return this.null();
    this.reserve(6);
    this.buffer.writeInt32BE(2, this.offset);
    this.buffer.writeInt16BE(value, this.offset + 4);
    this.offset += 6;
  }

  /**
   * A `bigint` from a whole JS number (two's complement over two 32-bit halves; exact for every whole
   * double in the int64 range, as `>>> 0` takes the value modulo 2^32 exactly).
   */
  int8(value: number | null): void {
    if (value === null) return this.null();
    if (!Number.isInteger(value) || value < -(2 ** 63) || value >= 2 ** 63) {
      throw new RangeError(`${value} is not a whole number a bigint can hold`);
    }
    this.reserve(12);
    this.buffer.writeInt32BE(8, this.offset);
    this.buffer.writeInt32BE(Math.floor(value / 2 ** 32), this.offset + 4);
    this.buffer.writeUInt32BE(value >>> 0, this.offset + 8);
    this.offset += 12;
  }

  /** Ends the data (the file trailer); `take` afterwards returns the last chunk. */
  trailer(): void {
    this.reserve(2);
    this.buffer.writeInt16BE(-1, this.offset);
    this.offset += 2;
  }

  /** The bytes written since the last take, as a Buffer of their own; the writer starts a new one. */
  take(): Buffer {
    const chunk = this.buffer.subarray(0, this.offset);
    this.buffer = Buffer.allocUnsafe(Math.max(this.chunkBytes + 64 * 1024, this.buffer.length));
    this.offset = 0;
    return chunk;
  }

  private reserve(bytes: number): void {
    const needed = this.offset + bytes;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }
}
