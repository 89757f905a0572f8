/**
 * ChannelError: the one error class for every channel condition, and
 * `check()`, the one place that turns a negative C return into it.
 */

/** Linux errno numbers (asm-generic/errno*.h) by name. */
const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  EIDRM: 43,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EILSEQ: 84,
  EUSERS: 87,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EDQUOT: 122,
  ECANCELED: 125,
  EOWNERDEAD: 130,
  ENOTRECOVERABLE: 131,
} as const;

/** An errno name such as `"ENOENT"`; other numbers read `"E<number>"`. */
export type ErrorCode = keyof typeof ERRNO | `E${number}`;

const NAMES = new Map<number, ErrorCode>(
  Object.entries(ERRNO).map(([name, num]) => [num, name as ErrorCode]),
);

/** Short descriptions for the codes a channel operation can produce. */
const DESCRIPTIONS: Partial<Record<ErrorCode, string>> = {
  EINVAL: "invalid argument",
  ENOENT: "no such channel, subscriber or handle",
  EEXIST: "the key is held by another channel",
  EACCES: "permission denied",
  ENOBUFS: "ring full",
  EMSGSIZE: "message longer than the channel's maxMessageSize",
  ETIMEDOUT: "timed out",
  EAGAIN: "nothing to receive",
  EUSERS: "too many members on this channel",
  EBADMSG: "a file of the channel failed validation",
  EIO: "a file of the channel was shrunk by a participant: the handle is unusable",
  ENOMEM: "out of memory",
  ECONNREFUSED: "connection refused",
  EHOSTUNREACH: "host unreachable",
  ENOTCONN: "not connected",
};

/** The errno number of a code name, e.g. `errnoOf("ENOENT") === 2`. */
export function errnoOf(code: keyof typeof ERRNO): number {
  return ERRNO[code];
}

/** Every failure of a channel operation. `code` names the Linux `errno`. */
export class ChannelError extends Error {
  /** The errno name, e.g. `"ENOENT"`. */
  readonly code: ErrorCode;
  /** The (positive) Linux errno number, e.g. `2`. */
  readonly errno: number;

  constructor(errno: number, detail?: string, options?: { cause?: unknown }) {
    const code: ErrorCode = NAMES.get(errno) ?? `E${errno}`;
    const text = detail ?? DESCRIPTIONS[code] ?? `error ${errno}`;
    super(`${code}: ${text}`, options);
    this.name = "ChannelError";
    this.code = code;
    this.errno = errno;
  }

  /** A ChannelError from an errno name; `cause` keeps the error it stands for. */
  static of(code: keyof typeof ERRNO, detail?: string, options?: { cause?: unknown }): ChannelError {
    return new ChannelError(ERRNO[code], detail, options);
  }
}

/**
 * Turns a C return value into a result: `rc >= 0` is returned, a negative
 * `-errno` is thrown as a ChannelError whose message names `what`.
 */
export function check(rc: number, what: string): number {
  if (rc >= 0) return rc;
  const errno = -rc;
  const code = NAMES.get(errno);
  const text = (code && DESCRIPTIONS[code]) ?? `error ${errno}`;
  throw new ChannelError(errno, `${text} (${what})`);
}
