/**
 * shmchan/bridge: carry a channel's messages across machines over NATS.
 * Needs the NATS client, an optional peer dependency of shmchan:
 * `npm install @nats-io/transport-node`. See README.md, "Across machines".
 */
export {
  type Bridge,
  bridge,
  type BridgeEvent,
  type BridgeOptions,
  type BridgeStats,
  type Direction,
  MARK_PREFIX,
  ORIGIN_HEADER,
  SEQ_HEADER,
} from "./src/bridge.ts";
