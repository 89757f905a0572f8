/**
 * The public API of shmchan: what `import ... from "shmchan"` gives (compiled
 * to dist/index.js) and what mod.ts re-exports for imports from source.
 */
export {
  type Access,
  type AttachTarget,
  Channel,
  type ChannelListing,
  type ChannelStats,
  type ChannelTarget,
  type Counters,
  type CreateOptions,
  type Delivery,
  libraryVersion,
  Loan,
  MessageView,
  type MemberStats,
  type MessageData,
  type SendOptions,
  Subscriber,
  type WaitOptions,
} from "./channel.ts";
export { ChannelError, type ErrorCode } from "./errors.ts";
