/**
 * shmchan: keyed message channels between processes, in POSIX shared memory,
 * for Node.js, Deno and Bun on Linux. See README.md.
 */
export {
  type Access,
  type AttachTarget,
  Channel,
  type CreateOptions,
  type Delivery,
  libraryVersion,
  type MessageData,
  type SendOptions,
  Subscriber,
  type WaitOptions,
} from "./src/channel.ts";
export { ChannelError, type ErrorCode } from "./src/errors.ts";
