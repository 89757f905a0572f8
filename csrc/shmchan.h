/* SPDX-License-Identifier: MIT */
/*
 * shmchan: keyed message channels between processes, in POSIX shared memory.
 *
 * Conventions
 *   - Every function returns >= 0 on success or a negative errno value.
 *   - Channels and subscribers are named by small positive integer handles,
 *     private to the calling process. A stale handle (detached, destroyed, or
 *     never valid) gives -ENOENT; it can never reach freed memory.
 *   - Thread-safety: every function may be called from any thread. Handle
 *     creation and closing (create/attach/destroy/detach) serialise on a
 *     process-wide mutex. Sends and receives on one handle from several threads
 *     are safe, but a handle must not be closed while another thread is still
 *     inside a call on it.
 *   - The design (shared layout, protocols, invariants) is in csrc/DESIGN.md.
 */
#ifndef SHMCHAN_H
#define SHMCHAN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHMCHAN_BUILD)
#define SHMC_API __attribute__((visibility("default")))
#else
#define SHMC_API
#endif

/* ---- constants ---------------------------------------------------------- */

/* Delivery modes (shmc_create's `delivery`). */
#define SHMC_UNICAST    0u   /* queue: each message received once */
#define SHMC_BROADCAST  1u   /* every receiver attached at send time */
#define SHMC_MULTICAST  2u   /* competing consumers, round-robin wakeups */

/* Creation flags (shmc_create's `flags`). */
#define SHMC_F_PRIVATE  1u   /* only the creator's uid may attach */

/* Access (shmc_attach_*'s `access`). */
#define SHMC_SEND       1u
#define SHMC_RECV       2u
#define SHMC_BOTH       3u

/* Limits. */
#define SHMC_MAX_RING_ENTRIES   32768u
#define SHMC_MAX_MESSAGE_SIZE   1048576u
#define SHMC_MAX_MEMBERS        64u      /* owner + subscribers per channel */
#define SHMC_MAX_REGION         2147483647u
#define SHMC_DOORBELL_PATH_MAX  108u     /* bytes of a doorbell path, its NUL included */

/* What a parked handle waits for (shmc_park / shmc_unpark). */
#define SHMC_WAIT_RECV  1u
#define SHMC_WAIT_SEND  2u

/* Indices of the array filled by shmc_info(). */
enum shmc_info_field {
	SHMC_INFO_KEY = 0,          /* channel key */
	SHMC_INFO_CHANNEL_ID,       /* channel id (positive int32) */
	SHMC_INFO_DELIVERY,         /* SHMC_UNICAST / SHMC_BROADCAST / SHMC_MULTICAST */
	SHMC_INFO_RING_ENTRIES,
	SHMC_INFO_MAX_MESSAGE_SIZE,
	SHMC_INFO_MEMBER_ID,        /* subscriber id (0 for an owner handle) */
	SHMC_INFO_ACCESS,           /* SHMC_SEND / SHMC_RECV / SHMC_BOTH */
	SHMC_INFO_IS_OWNER,         /* 1 for the handle returned by shmc_create */
	SHMC_INFO_MODE,             /* permission bits (0666 mask) */
	SHMC_INFO_FLAGS,            /* SHMC_F_* */
	SHMC_INFO_DROPPED,          /* targeted messages dropped: target gone */
	SHMC_INFO_SKIPPED,          /* slots skipped: writer died before publish, or a loan aborted */
	SHMC_INFO_OWNER_UID,        /* the channel's owner: the uid that owns its files */
	SHMC_INFO_COUNT
};

/* Indices of the array filled by shmc_lookup_key() / shmc_lookup_id(). */
enum shmc_lookup_field {
	SHMC_LOOKUP_STATE = 0,      /* SHMC_LOOKUP_LIVE / _STALE / _NOT_CHANNEL / _UNKNOWN */
	SHMC_LOOKUP_OWNER_UID,      /* who owns the name */
	SHMC_LOOKUP_CREATOR_PID,    /* the channel's creator (0 when not known) */
	SHMC_LOOKUP_CHANNEL_ID,     /* the channel's id (0 when not known) */
	SHMC_LOOKUP_COUNT
};
#define SHMC_LOOKUP_LIVE        1u   /* a live channel */
#define SHMC_LOOKUP_STALE       2u   /* a channel whose creator is gone */
#define SHMC_LOOKUP_NOT_CHANNEL 3u   /* a name that is not a channel (taken by its owner) */
#define SHMC_LOOKUP_UNKNOWN     4u   /* a channel this caller may not look into */

/* Indices of the header that shmc_stats() fills (csrc/DESIGN.md 11). The
 * counters are the channel's: the sum over its members, departed ones
 * included, except DROPPED and SKIPPED, which count each event once. */
enum shmc_stats_field {
	SHMC_STATS_KEY = 0,
	SHMC_STATS_CHANNEL_ID,
	SHMC_STATS_DELIVERY,
	SHMC_STATS_RING_ENTRIES,
	SHMC_STATS_MAX_MESSAGE_SIZE,
	SHMC_STATS_MODE,
	SHMC_STATS_FLAGS,
	SHMC_STATS_OWNER_UID,
	SHMC_STATS_CREATOR_PID,
	SHMC_STATS_MEMBERS,         /* live members (the owner's included) */
	SHMC_STATS_WAITING,         /* messages sent and not yet consumed (broadcast: by the slowest receiver) */
	SHMC_STATS_TAIL,            /* the next position a send claims */
	SHMC_STATS_SENT,            /* messages sent */
	SHMC_STATS_SENT_BYTES,
	SHMC_STATS_RECEIVED,        /* messages received (broadcast: by every receiver, summed) */
	SHMC_STATS_RECEIVED_BYTES,
	SHMC_STATS_FULL,            /* send attempts refused: ring full */
	SHMC_STATS_DROPPED,         /* targeted messages whose target left; slots of dead takers */
	SHMC_STATS_SKIPPED,         /* slots skipped: their writer died before publishing */
	SHMC_STATS_PARKS,           /* times a member parked */
	SHMC_STATS_WAKES,           /* wakes delivered to parked members */
	SHMC_STATS_ROWS,            /* member files found (rows may have been cut by @cap) */
	SHMC_STATS_COUNT
};

/* Indices of each member row that follows the shmc_stats() header. */
enum shmc_member_stats_field {
	SHMC_MSTATS_ID = 0,         /* subscriber id (the owner's member: its own id) */
	SHMC_MSTATS_SLOT,
	SHMC_MSTATS_PID,
	SHMC_MSTATS_UID,            /* owner of its member file */
	SHMC_MSTATS_ACCESS,         /* SHMC_SEND / SHMC_RECV / SHMC_BOTH */
	SHMC_MSTATS_IS_OWNER,       /* 1 for the creator's handle */
	SHMC_MSTATS_ALIVE,          /* 1 while its process holds its liveness lock */
	SHMC_MSTATS_PARKED,         /* SHMC_WAIT_* bits set now */
	SHMC_MSTATS_BEHIND,         /* messages it has yet to receive (see DESIGN.md 11) */
	SHMC_MSTATS_SENT,
	SHMC_MSTATS_SENT_BYTES,
	SHMC_MSTATS_RECEIVED,
	SHMC_MSTATS_RECEIVED_BYTES,
	SHMC_MSTATS_FULL,
	SHMC_MSTATS_DROPPED,        /* events this member handled */
	SHMC_MSTATS_SKIPPED,
	SHMC_MSTATS_PARKS,
	SHMC_MSTATS_WAKES,          /* wakes it delivered to others */
	SHMC_MSTATS_COUNT
};

/* Indices of each row that shmc_list() fills. */
enum shmc_list_field {
	SHMC_LIST_KEY = 0,
	SHMC_LIST_CHANNEL_ID,
	SHMC_LIST_DELIVERY,
	SHMC_LIST_MODE,
	SHMC_LIST_FLAGS,
	SHMC_LIST_OWNER_UID,
	SHMC_LIST_CREATOR_PID,
	SHMC_LIST_MEMBERS,
	SHMC_LIST_RING_ENTRIES,
	SHMC_LIST_MAX_MESSAGE_SIZE,
	SHMC_LIST_WAITING,
	SHMC_LIST_COUNT
};

/* ---- channel lifecycle -------------------------------------------------- */

/*
 * shmc_create - create a channel and return its owner handle.
 * @key:            1 .. 2^64-1
 * @delivery:       SHMC_UNICAST, SHMC_BROADCAST or SHMC_MULTICAST
 * @ring_entries:   power of two, 1 .. SHMC_MAX_RING_ENTRIES
 * @max_msg_size:   1 .. SHMC_MAX_MESSAGE_SIZE
 * @mode:           permission bits; only 0666 may be set
 * @flags:          0 or SHMC_F_PRIVATE
 * Returns the owner handle (> 0). Errors: -EINVAL (a parameter out of range,
 * or a region over SHMC_MAX_REGION), -EEXIST (the key is held: by a live
 * channel, a stale one of another uid, or a name that is not a channel;
 * shmc_lookup_key tells which and whose), or the errno of a failed system
 * call. The channel's files belong to the caller's euid: its owner.
 * The owner handle may send (subject to the permission check) but not receive.
 */
SHMC_API int shmc_create(uint64_t key, uint32_t delivery, uint32_t ring_entries,
			 uint32_t max_msg_size, uint32_t mode, uint32_t flags);

/*
 * shmc_destroy - remove a channel from lookup and close the owner handle.
 * Attached subscribers keep working until they detach. Returns 0, or -ENOENT
 * when @owner is not a live owner handle (a second destroy included), or
 * -EINVAL when @owner is a subscriber handle.
 */
SHMC_API int shmc_destroy(int owner);

/*
 * shmc_attach_key / shmc_attach_id - attach a subscriber.
 * @access: SHMC_SEND, SHMC_RECV or SHMC_BOTH.
 * Returns a subscriber handle (> 0). Errors: -EINVAL (bad access, key 0, id
 * <= 0), -ENOENT (no live channel with that key or id: shmc_lookup_key tells
 * whether a stale one holds it, and whose), -EACCES (the mode bits, or
 * SHMC_F_PRIVATE, deny the access; root gets no bypass), -EUSERS
 * (SHMC_MAX_MEMBERS reached), -EBADMSG (a file of the channel fails
 * validation).
 */
SHMC_API int shmc_attach_key(uint64_t key, uint32_t access);
SHMC_API int shmc_attach_id(int32_t channel_id, uint32_t access);

/*
 * shmc_attach_key_owned / shmc_attach_id_owned - as above, but only to a
 * channel owned by @owner_uid: a key or id is first come, first served (as
 * with System V keys), so a caller that knows whose channel it wants says so.
 * Another owner: -EACCES.
 */
SHMC_API int shmc_attach_key_owned(uint64_t key, uint32_t access, uint32_t owner_uid);
SHMC_API int shmc_attach_id_owned(int32_t channel_id, uint32_t access, uint32_t owner_uid);

/*
 * shmc_lookup_key / shmc_lookup_id - what holds @key (@channel_id), without
 * attaching: fill @out[0 .. SHMC_LOOKUP_COUNT-1] (see enum shmc_lookup_field).
 * Returns SHMC_LOOKUP_COUNT, or -ENOENT when nothing holds it, -EINVAL for key
 * 0 or id <= 0, -EFAULT for a NULL @out.
 */
SHMC_API int shmc_lookup_key(uint64_t key, uint64_t *out);
SHMC_API int shmc_lookup_id(int32_t channel_id, uint64_t *out);

/*
 * shmc_detach - detach a subscriber and close its handle. Returns 0, or
 * -ENOENT when @sub is not a live subscriber handle (a second detach
 * included), -EINVAL when @sub is an owner handle.
 */
SHMC_API int shmc_detach(int sub);

/*
 * shmc_info - fill @out[0 .. SHMC_INFO_COUNT-1] (see enum shmc_info_field).
 * Returns SHMC_INFO_COUNT, or -ENOENT for a stale handle.
 */
SHMC_API int shmc_info(int handle, uint64_t *out);

/* ---- looking inside ------------------------------------------------------ */

/*
 * shmc_stats - counters and members of @handle's channel: fills the header
 * @out[0 .. SHMC_STATS_COUNT-1] (enum shmc_stats_field), then one row of
 * SHMC_MSTATS_COUNT values per member file (enum shmc_member_stats_field),
 * as many as fit in @cap values. Reads the channel's files without writing
 * anything (csrc/DESIGN.md 11). Returns the number of rows written.
 * Errors: -ENOENT (stale handle), -ERANGE (@cap < SHMC_STATS_COUNT),
 * -EFAULT (NULL @out), -EBADMSG (a file fails validation).
 *
 * shmc_stats_key / shmc_stats_id - the same for the live channel with @key
 * (@channel_id), without attaching: any class with a right on the channel,
 * or root, may look. -ENOENT (no live channel), -EACCES (no right on it),
 * -EINVAL (key 0, id <= 0).
 */
SHMC_API int shmc_stats(int handle, uint64_t *out, uint32_t cap);
SHMC_API int shmc_stats_key(uint64_t key, uint64_t *out, uint32_t cap);
SHMC_API int shmc_stats_id(int32_t channel_id, uint64_t *out, uint32_t cap);

/*
 * shmc_list - the live channels the caller may look into (a right on the
 * channel, or root): one row of SHMC_LIST_COUNT values each (enum
 * shmc_list_field), as many as fit in @cap values. Returns the number of
 * live channels found, which may exceed the rows written: call again with
 * more room. Channels the caller may not look into are left out.
 */
SHMC_API int shmc_list(uint64_t *out, uint32_t cap);

/*
 * shmc_remove_key / shmc_remove_id - take a live channel out of lookup, like
 * ipcrm: the key is free and attaches fail with -ENOENT at once; members
 * (its creator included) keep working until they leave. Allowed for the
 * channel's owner uid and root: anyone else gets -EACCES. -ENOENT when no
 * live channel has the key (id), -EINVAL for key 0 or id <= 0.
 */
SHMC_API int shmc_remove_key(uint64_t key);
SHMC_API int shmc_remove_id(int32_t channel_id);

/*
 * shmc_gc - sweep /dev/shm now: remove what dead processes left that the
 * caller may remove (its uid's names, or any as root), as every create and
 * attach does. Returns how many names were removed or taken out of lookup.
 */
SHMC_API int shmc_gc(void);

/* ---- messages ----------------------------------------------------------- */

/*
 * shmc_try_send - send one message without waiting.
 * @target: 0 for the delivery mode's normal routing, or a subscriber id:
 *          then only that subscriber receives the message.
 * Returns @len. Errors: -EMSGSIZE (@len > max message size), -ENOBUFS (ring
 * full), -ENOENT (stale handle, or @target is not a receiving subscriber),
 * -EACCES (handle has no send access).
 */
SHMC_API int shmc_try_send(int handle, const void *buf, uint32_t len, uint32_t target);

/*
 * shmc_try_recv - receive one message without waiting.
 * Copies min(message length, @cap) bytes into @buf and returns that count
 * (0 is a valid, empty message); the message is consumed even if truncated.
 * Errors: -EAGAIN (nothing to receive), -EACCES (no receive access), -ENOENT.
 * Every message call may also return -EIO: a participant shrank one of the
 * channel's files; the handle is unusable from then on (detach it).
 */
SHMC_API int shmc_try_recv(int handle, void *buf, uint32_t cap);

/*
 * shmc_send / shmc_recv - as the try variants, but wait for room or for a
 * message: spin (at most 30 us, never past the timeout) when recent waits of
 * the handle say that pays, then sleep on a futex. @timeout_ns < 0 waits
 * forever; 0 behaves as the try variant. Errors add -ETIMEDOUT. -EINTR is
 * retried.
 */
SHMC_API int shmc_send(int handle, const void *buf, uint32_t len, uint32_t target,
		       int64_t timeout_ns);
SHMC_API int shmc_recv(int handle, void *buf, uint32_t cap, int64_t timeout_ns);

/*
 * shmc_try_send_many - send up to @count messages without waiting. @buf holds
 * them back to back, @lens[i] is the length of the i-th. Stops at the first
 * that cannot be sent. Returns the number sent (> 0), or the error of the
 * first message (as shmc_try_send) when none was sent.
 */
SHMC_API int shmc_try_send_many(int handle, const void *buf, const uint32_t *lens,
				uint32_t count, uint32_t target);

/*
 * shmc_try_recv_many - receive up to @max_count messages without waiting,
 * into @buf back to back; @lens[i] gets each length. Receives only while at
 * least max_message_size bytes of @buf remain, so nothing is truncated.
 * Returns the number received (> 0), or -EAGAIN / -EACCES / -ENOENT / -EINVAL
 * (@cap below the channel's max message size) when none was.
 */
SHMC_API int shmc_try_recv_many(int handle, void *buf, uint32_t cap, uint32_t *lens,
				uint32_t max_count);

/*
 * shmc_pending - a cheap check: 1 if a receive on @handle would find a message
 * now, 0 if not (a hint: another receiver may take it first).
 */
SHMC_API int shmc_pending(int handle);

/* ---- zero copy ------------------------------------------------------------ */

/*
 * Loans: write a message straight into its slot (csrc/DESIGN.md section 7,
 * "Zero copy"). One loan per handle at a time.
 *
 * shmc_try_loan - claim the next slot without waiting: *@payload points at
 * its payload, writable, max message size bytes. Returns that capacity.
 * Errors: -ENOBUFS (ring full), -EBUSY (this handle already has a loan:
 * commit or abort it, or use another handle), -EACCES (no send access).
 * While a loan is outstanding, every send on the handle (shmc_try_send,
 * shmc_send, shmc_try_send_many) is -EBUSY too. A loan holds back the
 * messages after it (unicast/multicast deliver by position): keep it short.
 * shmc_loan - as shmc_try_loan, but waits for room like shmc_send
 * (@timeout_ns < 0 forever, 0 as the try variant; -ETIMEDOUT).
 *
 * shmc_commit - publish the loaned slot as a message of @len bytes, for
 * @target (0: the delivery mode's routing, else that subscriber only), and
 * wake receivers as a send does. Returns @len. Errors: -EMSGSIZE (@len over
 * the max message size) and -ENOENT (@target is not a receiving subscriber)
 * keep the loan outstanding (fix and commit again, or abort); -EINVAL: no
 * loan outstanding.
 *
 * shmc_abort - give the loaned slot back unsent: it becomes a skipped slot
 * (counted in SHMC_INFO_SKIPPED), never delivered. Returns 0, or -EINVAL
 * when no loan is outstanding.
 *
 * Detaching or destroying a handle aborts its loan; a process that dies
 * holding one leaves a slot that the others skip (as a writer that died
 * mid-send).
 */
SHMC_API int shmc_try_loan(int handle, void **payload);
SHMC_API int shmc_loan(int handle, void **payload, int64_t timeout_ns);
SHMC_API int shmc_commit(int handle, uint32_t len, uint32_t target);
SHMC_API int shmc_abort(int handle);

/*
 * Views: read the oldest message where it lies. One view per handle at a
 * time.
 *
 * shmc_try_recv_view - take the next message for this handle without
 * copying it: *@payload points at its bytes, read-only, valid until
 * shmc_release (or detach). Returns its length (0 is a valid message).
 * Errors: -EAGAIN (nothing to receive), -EBUSY (a view is already held:
 * release it, or use another handle), -EACCES (no receive access). While a
 * view is held, every receive on the handle (shmc_try_recv, shmc_recv,
 * shmc_try_recv_many) is -EBUSY too. A held view keeps its slot out of use:
 * in unicast/multicast the slot, in broadcast every producer (the slowest
 * receiver rule); producers get -ENOBUFS or wait.
 * shmc_recv_view - as shmc_try_recv_view, but waits like shmc_recv.
 *
 * shmc_release - end the view: the slot may be reused. Returns 0; -ESTALE
 * when the bytes changed while held (unicast/multicast only, and only when
 * a participant rewrote the receivers' shared state to free the slot
 * early: treat what was read as corrupt); -EINVAL when no view is held.
 *
 * Detaching a handle releases its view; a process that dies holding one
 * loses that message (unicast/multicast: the slot comes back, counted in
 * SHMC_INFO_DROPPED) or stops gating (broadcast).
 */
SHMC_API int shmc_try_recv_view(int handle, const void **payload);
SHMC_API int shmc_recv_view(int handle, const void **payload, int64_t timeout_ns);
SHMC_API int shmc_release(int handle);

/*
 * For bindings that cannot hold pointers (JavaScript): the same, with
 * offsets into the handle's view region.
 *
 * shmc_view_region - the handle's view region: @out[0] its address, @out[1]
 * its length, @out[2] a token (> 0). With send access the region is the
 * handle's read-write mapping of the channel's message data; a
 * receive-only handle gets a private copy-on-write mapping of it (what it
 * writes there stays in its own copies of those pages, never reaches the
 * channel, and is dropped before a view of those pages is handed out). The
 * region stays mapped while its handle lives; at detach it becomes
 * anonymous memory at the same address (reads see zeros, nothing faults)
 * and is unmapped by shmc_view_region_drop(@token) once the caller holds no
 * reference to it any more. Returns 0 (the same region again for the same
 * handle). Errors: -EMFILE (1023 regions in the process, retired ones not
 * yet dropped included), -ENOMEM (the private mapping failed), -EFAULT.
 * shmc_try_loan_at / shmc_try_recv_view_at - shmc_try_loan /
 * shmc_try_recv_view writing the payload's offset in the region to *@offset.
 */
SHMC_API int shmc_view_region(int handle, uint64_t *out);
SHMC_API int shmc_view_region_drop(int token);
SHMC_API int shmc_try_loan_at(int handle, uint32_t *offset);
SHMC_API int shmc_try_recv_view_at(int handle, uint32_t *offset);

/* ---- event-loop integration (no helper thread) --------------------------- */

/*
 * A handle that waits on an event loop has a "doorbell" per direction: a Unix
 * stream socket in the channel's directory that the loop listens on, which
 * only those who may wake it can connect to (senders for SHMC_WAIT_RECV,
 * receivers for SHMC_WAIT_SEND).
 *
 * shmc_doorbell_path - where to listen for @what: writes a NUL-terminated
 * path of at most SHMC_DOORBELL_PATH_MAX bytes into @buf (@cap bytes) and
 * returns its length. Bind and listen there, then call shmc_doorbell_seal.
 * Errors: -EALREADY (sealed already), -ERANGE (@cap too small), -EINVAL.
 *
 * shmc_doorbell_seal - the socket listens: restrict who may connect and
 * publish it. From then on a handle parked with shmc_park() gets one byte on
 * a connection to it from whoever wakes it. Bytes are hints: after one, retry
 * the parked operations of that handle and direction. The socket is removed
 * when the handle is closed. Errors: -ENOENT (no socket listening at the
 * path), -EINVAL.
 */
SHMC_API int shmc_doorbell_path(int handle, uint32_t what, char *buf, uint32_t cap);
SHMC_API int shmc_doorbell_seal(int handle, uint32_t what);

/*
 * shmc_park - announce that @handle waits (SHMC_WAIT_RECV or SHMC_WAIT_SEND).
 * Returns 1 if the condition already holds (nothing parked: retry now), 0 if
 * parked: the next send (or freed slot) will ring the handle's doorbell for
 * @what, which must be sealed (else -ENOTCONN). A parked handle is unparked by
 * its wake; call shmc_park again to wait again.
 */
SHMC_API int shmc_park(int handle, uint32_t what);

/*
 * shmc_unpark - withdraw a park (timeout, abort, detach). If a wake was
 * already delivered to @handle for a message it will not take, the wake is
 * passed on to another parked receiver, so no wake is lost. Returns 0.
 */
SHMC_API int shmc_unpark(int handle, uint32_t what);

/*
 * shmc_try_recv_park - an event loop's receive in one call: shmc_try_recv,
 * and when there is nothing to take, shmc_park(handle, SHMC_WAIT_RECV).
 * @flags: 0, or SHMC_TAKE_UNPARK: when a message is taken, also withdraw
 *         the handle's receive park, as shmc_unpark does (for the caller's
 *         last waiter on @handle: its wait is over).
 * Returns the bytes copied, as shmc_try_recv (a message was taken; without
 * SHMC_TAKE_UNPARK a park already in place stays); -EAGAIN: nothing to take,
 * and now parked, so the next send rings the handle's receive doorbell;
 * -EBUSY: nothing taken and not parked (a message came while parking and
 * another receiver took it first): call again; -ENOTCONN: nothing to take
 * and the handle has no sealed receive doorbell (as shmc_park). Other
 * errors as shmc_try_recv (nothing parked), or -EINVAL for unknown @flags.
 */
#define SHMC_TAKE_UNPARK 1u
SHMC_API int shmc_try_recv_park(int handle, void *buf, uint32_t cap, uint32_t flags);

/* ---- misc ---------------------------------------------------------------- */

/* shmc_strerror - a static description of a negative return code. */
SHMC_API const char *shmc_strerror(int code);

/* shmc_version - the library version as 0xMMmmpp. */
SHMC_API int shmc_version(void);

#ifdef __cplusplus
}
#endif
#endif /* SHMCHAN_H */
