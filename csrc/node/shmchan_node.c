/* SPDX-License-Identifier: MIT */
/*
 * shmchan_node.node: the Node-API addon through which Node.js calls
 * libshmchan.so (src/backend_node.ts loads it).
 *
 * It is a shim, not a second copy of the library: open(path) dlopens the
 * shared object that Deno and Bun load too (build/libshmchan.so or
 * $SHMCHAN_LIB) and returns one JavaScript function per C function of
 * src/backend.ts's SYMBOLS, taking the same arguments as under Deno and Bun:
 * "u64" a BigInt, "buffer" an ArrayBufferView, every other integer a number.
 * `signatures` lists what each wrapper takes, so that the TypeScript side
 * can refuse an addon built from another version of that table.
 *
 * The napi_* symbols are left undefined and resolved by the host process
 * when Node loads the addon, so one build serves every Node version with
 * Node-API 8 (Node 22, 24, 26, ...), with no compiler on the user's machine.
 *
 * Buffers are checked against the lengths passed with them: a length past
 * the end of its buffer returns -EINVAL instead of reaching the C library.
 * Beside the table, viewBuffer(h) makes the external ArrayBuffer of a
 * handle's zero-copy view region (no address passes through JavaScript).
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* From csrc/shmchan.h: the buffers shmc_info() and shmc_lookup_key() fill
 * hold this many u64. */
#define INFO_COUNT 13u
#define LOOKUP_COUNT 4u
/* Longest library path accepted by open(), with its NUL. */
#define PATH_CAP 4096

/* The C functions, resolved from one dlopen'ed library. */
struct lib {
	int (*create)(uint64_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
	int (*destroy)(int);
	int (*attach_key)(uint64_t, uint32_t);
	int (*attach_id)(int32_t, uint32_t);
	int (*attach_key_owned)(uint64_t, uint32_t, uint32_t);
	int (*attach_id_owned)(int32_t, uint32_t, uint32_t);
	int (*lookup_key)(uint64_t, uint64_t *);
	int (*lookup_id)(int32_t, uint64_t *);
	int (*detach)(int);
	int (*info)(int, uint64_t *);
	int (*try_send)(int, const void *, uint32_t, uint32_t);
	int (*try_recv)(int, void *, uint32_t);
	int (*try_send_many)(int, const void *, const uint32_t *, uint32_t, uint32_t);
	int (*try_recv_many)(int, void *, uint32_t, uint32_t *, uint32_t);
	int (*doorbell_path)(int, uint32_t, char *, uint32_t);
	int (*doorbell_seal)(int, uint32_t);
	int (*park)(int, uint32_t);
	int (*unpark)(int, uint32_t);
	int (*try_loan_at)(int, uint32_t *);
	int (*commit)(int, uint32_t, uint32_t);
	int (*abort_loan)(int);
	int (*try_recv_view_at)(int, uint32_t *);
	int (*release)(int);
	int (*view_region)(int, uint64_t *);
	int (*view_region_drop)(int);
	int (*try_recv_park)(int, void *, uint32_t, uint32_t);
	int (*version)(void);
	int (*stats)(int, uint64_t *, uint32_t);
	int (*stats_key)(uint64_t, uint64_t *, uint32_t);
	int (*stats_id)(int32_t, uint64_t *, uint32_t);
	int (*list)(uint64_t *, uint32_t);
	int (*remove_key)(uint64_t);
	int (*remove_id)(int32_t);
	int (*gc)(void);
};

/* A buffer argument: its bytes and their count. */
struct buf {
	void *data;
	size_t len;
};

/* ---- arguments ------------------------------------------------------------ */

/*
 * The arguments of one call, with their count checked; the library table
 * comes in as the callback's data. NULL (with a TypeError thrown) when too
 * few were passed.
 */
static struct lib *args_of(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
	size_t argc = want;
	void *data = NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok)
		return NULL;
	if (argc < want) {
		napi_throw_type_error(env, NULL, "shmchan addon: too few arguments");
		return NULL;
	}
	return data;
}

static bool get_i32(napi_env env, napi_value v, int32_t *out)
{
	if (napi_get_value_int32(env, v, out) == napi_ok)
		return true;
	napi_throw_type_error(env, NULL, "shmchan addon: expected a number");
	return false;
}

static bool get_u32(napi_env env, napi_value v, uint32_t *out)
{
	if (napi_get_value_uint32(env, v, out) == napi_ok)
		return true;
	napi_throw_type_error(env, NULL, "shmchan addon: expected a number");
	return false;
}

static bool get_u64(napi_env env, napi_value v, uint64_t *out)
{
	bool lossless = false;
	if (napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok) {
		napi_throw_type_error(env, NULL, "shmchan addon: expected a bigint");
		return false;
	}
	if (!lossless) {
		napi_throw_range_error(env, NULL, "shmchan addon: bigint outside 0 .. 2^64-1");
		return false;
	}
	return true;
}

/* A typed array's or DataView's bytes (byte offset applied). */
static bool get_buf(napi_env env, napi_value v, struct buf *out)
{
	bool is = false;
	napi_typedarray_type type;
	size_t count = 0;
	if (napi_is_typedarray(env, v, &is) == napi_ok && is &&
	    napi_get_typedarray_info(env, v, &type, &count, &out->data, NULL, NULL) == napi_ok) {
		static const size_t width[] = {
			[napi_int8_array] = 1,	     [napi_uint8_array] = 1,	[napi_uint8_clamped_array] = 1,
			[napi_int16_array] = 2,	     [napi_uint16_array] = 2,	[napi_int32_array] = 4,
			[napi_uint32_array] = 4,     [napi_float32_array] = 4,	[napi_float64_array] = 8,
			[napi_bigint64_array] = 8,   [napi_biguint64_array] = 8,
		};
		size_t w = (size_t)type < sizeof width / sizeof width[0] ? width[type] : 0;
		if (w == 0) {
			napi_throw_type_error(env, NULL, "shmchan addon: unsupported typed array");
			return false;
		}
		out->len = count * w;
		return true;
	}
	if (napi_is_dataview(env, v, &is) == napi_ok && is &&
	    napi_get_dataview_info(env, v, &out->len, &out->data, NULL, NULL) == napi_ok)
		return true;
	napi_throw_type_error(env, NULL, "shmchan addon: expected an ArrayBufferView");
	return false;
}

static napi_value result(napi_env env, int rc)
{
	napi_value v = NULL;
	napi_create_int32(env, rc, &v);
	return v;
}

/* ---- one wrapper per C function ------------------------------------------ */

static napi_value js_create(napi_env env, napi_callback_info info)
{
	napi_value a[6];
	struct lib *l = args_of(env, info, 6, a);
	uint64_t key;
	uint32_t delivery, entries, size, mode, flags;
	if (!l || !get_u64(env, a[0], &key) || !get_u32(env, a[1], &delivery) || !get_u32(env, a[2], &entries) ||
	    !get_u32(env, a[3], &size) || !get_u32(env, a[4], &mode) || !get_u32(env, a[5], &flags))
		return NULL;
	return result(env, l->create(key, delivery, entries, size, mode, flags));
}

static napi_value js_destroy(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	int32_t h;
	if (!l || !get_i32(env, a[0], &h))
		return NULL;
	return result(env, l->destroy(h));
}

static napi_value js_attach_key(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	uint64_t key;
	uint32_t access;
	if (!l || !get_u64(env, a[0], &key) || !get_u32(env, a[1], &access))
		return NULL;
	return result(env, l->attach_key(key, access));
}

static napi_value js_attach_id(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t id;
	uint32_t access;
	if (!l || !get_i32(env, a[0], &id) || !get_u32(env, a[1], &access))
		return NULL;
	return result(env, l->attach_id(id, access));
}

static napi_value js_attach_key_owned(napi_env env, napi_callback_info info)
{
	napi_value a[3];
	struct lib *l = args_of(env, info, 3, a);
	uint64_t key;
	uint32_t access, owner;
	if (!l || !get_u64(env, a[0], &key) || !get_u32(env, a[1], &access) || !get_u32(env, a[2], &owner))
		return NULL;
	return result(env, l->attach_key_owned(key, access, owner));
}

static napi_value js_attach_id_owned(napi_env env, napi_callback_info info)
{
	napi_value a[3];
	struct lib *l = args_of(env, info, 3, a);
	int32_t id;
	uint32_t access, owner;
	if (!l || !get_i32(env, a[0], &id) || !get_u32(env, a[1], &access) || !get_u32(env, a[2], &owner))
		return NULL;
	return result(env, l->attach_id_owned(id, access, owner));
}

/* @out must hold LOOKUP_COUNT aligned u64. */
static bool lookup_fits(const struct buf *out)
{
	return out->len >= LOOKUP_COUNT * sizeof(uint64_t) && ((uintptr_t)out->data & 7u) == 0;
}

static napi_value js_lookup_key(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	uint64_t key;
	struct buf out;
	if (!l || !get_u64(env, a[0], &key) || !get_buf(env, a[1], &out))
		return NULL;
	if (!lookup_fits(&out))
		return result(env, -EINVAL);
	return result(env, l->lookup_key(key, out.data));
}

static napi_value js_lookup_id(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t id;
	struct buf out;
	if (!l || !get_i32(env, a[0], &id) || !get_buf(env, a[1], &out))
		return NULL;
	if (!lookup_fits(&out))
		return result(env, -EINVAL);
	return result(env, l->lookup_id(id, out.data));
}

static napi_value js_detach(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	int32_t h;
	if (!l || !get_i32(env, a[0], &h))
		return NULL;
	return result(env, l->detach(h));
}

static napi_value js_info(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t h;
	struct buf out;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &out))
		return NULL;
	if (out.len < INFO_COUNT * sizeof(uint64_t) || ((uintptr_t)out.data & 7u) != 0)
		return result(env, -EINVAL);
	return result(env, l->info(h, out.data));
}

static napi_value js_try_send(napi_env env, napi_callback_info info)
{
	napi_value a[4];
	struct lib *l = args_of(env, info, 4, a);
	int32_t h;
	struct buf msg;
	uint32_t len, target;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &msg) || !get_u32(env, a[2], &len) ||
	    !get_u32(env, a[3], &target))
		return NULL;
	if (len > msg.len)
		return result(env, -EINVAL);
	return result(env, l->try_send(h, msg.data, len, target));
}

static napi_value js_try_recv(napi_env env, napi_callback_info info)
{
	napi_value a[3];
	struct lib *l = args_of(env, info, 3, a);
	int32_t h;
	struct buf into;
	uint32_t cap;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &into) || !get_u32(env, a[2], &cap))
		return NULL;
	if (cap > into.len)
		return result(env, -EINVAL);
	return result(env, l->try_recv(h, into.data, cap));
}

/* @lens must hold @count aligned u32 inside its buffer. */
static bool lens_fit(const struct buf *lens, uint32_t count)
{
	return ((uintptr_t)lens->data & 3u) == 0 && (uint64_t)count * sizeof(uint32_t) <= lens->len;
}

static napi_value js_try_send_many(napi_env env, napi_callback_info info)
{
	napi_value a[5];
	struct lib *l = args_of(env, info, 5, a);
	int32_t h;
	struct buf msgs, lens;
	uint32_t count, target;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &msgs) || !get_buf(env, a[2], &lens) ||
	    !get_u32(env, a[3], &count) || !get_u32(env, a[4], &target))
		return NULL;
	if (!lens_fit(&lens, count))
		return result(env, -EINVAL);
	/* The library reads the messages back to back: they must all lie in @msgs. */
	uint64_t total = 0;
	const uint32_t *len = lens.data;
	for (uint32_t i = 0; i < count; i++)
		total += len[i];
	if (total > msgs.len)
		return result(env, -EINVAL);
	return result(env, l->try_send_many(h, msgs.data, lens.data, count, target));
}

static napi_value js_try_recv_many(napi_env env, napi_callback_info info)
{
	napi_value a[5];
	struct lib *l = args_of(env, info, 5, a);
	int32_t h;
	struct buf into, lens;
	uint32_t cap, max;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &into) || !get_u32(env, a[2], &cap) ||
	    !get_buf(env, a[3], &lens) || !get_u32(env, a[4], &max))
		return NULL;
	if (cap > into.len || !lens_fit(&lens, max))
		return result(env, -EINVAL);
	return result(env, l->try_recv_many(h, into.data, cap, lens.data, max));
}

static napi_value js_doorbell_path(napi_env env, napi_callback_info info)
{
	napi_value a[4];
	struct lib *l = args_of(env, info, 4, a);
	int32_t h;
	uint32_t what, cap;
	struct buf out;
	if (!l || !get_i32(env, a[0], &h) || !get_u32(env, a[1], &what) || !get_buf(env, a[2], &out) ||
	    !get_u32(env, a[3], &cap))
		return NULL;
	if (cap > out.len)
		return result(env, -EINVAL);
	return result(env, l->doorbell_path(h, what, out.data, cap));
}

static napi_value js_doorbell_seal(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t h;
	uint32_t what;
	if (!l || !get_i32(env, a[0], &h) || !get_u32(env, a[1], &what))
		return NULL;
	return result(env, l->doorbell_seal(h, what));
}

static napi_value js_park(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t h;
	uint32_t what;
	if (!l || !get_i32(env, a[0], &h) || !get_u32(env, a[1], &what))
		return NULL;
	return result(env, l->park(h, what));
}

static napi_value js_unpark(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t h;
	uint32_t what;
	if (!l || !get_i32(env, a[0], &h) || !get_u32(env, a[1], &what))
		return NULL;
	return result(env, l->unpark(h, what));
}

/* An offset out-parameter: one aligned u32. */
static bool offset_fits(const struct buf *out)
{
	return out->len >= sizeof(uint32_t) && ((uintptr_t)out->data & 3u) == 0;
}

static napi_value js_try_loan_at(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t h;
	struct buf out;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &out))
		return NULL;
	if (!offset_fits(&out))
		return result(env, -EINVAL);
	return result(env, l->try_loan_at(h, out.data));
}

static napi_value js_try_recv_view_at(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t h;
	struct buf out;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &out))
		return NULL;
	if (!offset_fits(&out))
		return result(env, -EINVAL);
	return result(env, l->try_recv_view_at(h, out.data));
}

static napi_value js_commit(napi_env env, napi_callback_info info)
{
	napi_value a[3];
	struct lib *l = args_of(env, info, 3, a);
	int32_t h;
	uint32_t len, target;
	if (!l || !get_i32(env, a[0], &h) || !get_u32(env, a[1], &len) || !get_u32(env, a[2], &target))
		return NULL;
	return result(env, l->commit(h, len, target));
}

static napi_value js_abort(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	int32_t h;
	if (!l || !get_i32(env, a[0], &h))
		return NULL;
	return result(env, l->abort_loan(h));
}

static napi_value js_release(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	int32_t h;
	if (!l || !get_i32(env, a[0], &h))
		return NULL;
	return result(env, l->release(h));
}

static napi_value js_view_region(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	int32_t h;
	struct buf out;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &out))
		return NULL;
	if (out.len < 3 * sizeof(uint64_t) || ((uintptr_t)out.data & 7u) != 0)
		return result(env, -EINVAL);
	return result(env, l->view_region(h, out.data));
}

static napi_value js_view_region_drop(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	int32_t token;
	if (!l || !get_i32(env, a[0], &token))
		return NULL;
	return result(env, l->view_region_drop(token));
}

/* What the finalizer of a view buffer needs. */
struct region_ref {
	struct lib *l;
	int token;
};

static void region_finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)data;
	struct region_ref *r = hint;
	r->l->view_region_drop(r->token);
	free(r);
}

/*
 * viewBuffer(h): an external ArrayBuffer over handle @h's view region, or
 * the negative errno. Its finalizer drops the region (shmc_view_region_drop),
 * which the library unmaps only once its handle is gone as well: no view of
 * it ever reaches unmapped memory.
 */
static napi_value js_view_buffer(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	int32_t h;
	if (!l || !get_i32(env, a[0], &h))
		return NULL;
	uint64_t out[3];
	int rc = l->view_region(h, out);
	if (rc < 0)
		return result(env, rc);
	struct region_ref *r = malloc(sizeof *r);
	if (!r) {
		l->view_region_drop((int)out[2]);
		return result(env, -ENOMEM);
	}
	r->l = l;
	r->token = (int)out[2];
	napi_value ab = NULL;
	if (napi_create_external_arraybuffer(env, (void *)(uintptr_t)out[0], (size_t)out[1], region_finalize, r,
					     &ab) != napi_ok) {
		l->view_region_drop(r->token);
		free(r);
		return result(env, -ENOTSUP);
	}
	return ab;
}

static napi_value js_try_recv_park(napi_env env, napi_callback_info info)
{
	napi_value a[4];
	struct lib *l = args_of(env, info, 4, a);
	int32_t h;
	struct buf into;
	uint32_t cap, flags;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &into) || !get_u32(env, a[2], &cap) ||
	    !get_u32(env, a[3], &flags))
		return NULL;
	if (cap > into.len)
		return result(env, -EINVAL);
	return result(env, l->try_recv_park(h, into.data, cap, flags));
}

static napi_value js_version(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 0, a);
	if (!l)
		return NULL;
	return result(env, l->version());
}

/* @out must hold @cap aligned u64 (shmc_stats*, shmc_list). */
static bool u64s_fit(const struct buf *out, uint32_t cap)
{
	return ((uintptr_t)out->data & 7u) == 0 && (uint64_t)cap * sizeof(uint64_t) <= out->len;
}

static napi_value js_stats(napi_env env, napi_callback_info info)
{
	napi_value a[3];
	struct lib *l = args_of(env, info, 3, a);
	int32_t h;
	struct buf out;
	uint32_t cap;
	if (!l || !get_i32(env, a[0], &h) || !get_buf(env, a[1], &out) || !get_u32(env, a[2], &cap))
		return NULL;
	if (!u64s_fit(&out, cap))
		return result(env, -EINVAL);
	return result(env, l->stats(h, out.data, cap));
}

static napi_value js_stats_key(napi_env env, napi_callback_info info)
{
	napi_value a[3];
	struct lib *l = args_of(env, info, 3, a);
	uint64_t key;
	struct buf out;
	uint32_t cap;
	if (!l || !get_u64(env, a[0], &key) || !get_buf(env, a[1], &out) || !get_u32(env, a[2], &cap))
		return NULL;
	if (!u64s_fit(&out, cap))
		return result(env, -EINVAL);
	return result(env, l->stats_key(key, out.data, cap));
}

static napi_value js_stats_id(napi_env env, napi_callback_info info)
{
	napi_value a[3];
	struct lib *l = args_of(env, info, 3, a);
	int32_t id;
	struct buf out;
	uint32_t cap;
	if (!l || !get_i32(env, a[0], &id) || !get_buf(env, a[1], &out) || !get_u32(env, a[2], &cap))
		return NULL;
	if (!u64s_fit(&out, cap))
		return result(env, -EINVAL);
	return result(env, l->stats_id(id, out.data, cap));
}

static napi_value js_list(napi_env env, napi_callback_info info)
{
	napi_value a[2];
	struct lib *l = args_of(env, info, 2, a);
	struct buf out;
	uint32_t cap;
	if (!l || !get_buf(env, a[0], &out) || !get_u32(env, a[1], &cap))
		return NULL;
	if (!u64s_fit(&out, cap))
		return result(env, -EINVAL);
	return result(env, l->list(out.data, cap));
}

static napi_value js_remove_key(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	uint64_t key;
	if (!l || !get_u64(env, a[0], &key))
		return NULL;
	return result(env, l->remove_key(key));
}

static napi_value js_remove_id(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 1, a);
	int32_t id;
	if (!l || !get_i32(env, a[0], &id))
		return NULL;
	return result(env, l->remove_id(id));
}

static napi_value js_gc(napi_env env, napi_callback_info info)
{
	napi_value a[1];
	struct lib *l = args_of(env, info, 0, a);
	if (!l)
		return NULL;
	return result(env, l->gc());
}

/* ---- the table ------------------------------------------------------------ */

struct entry {
	const char *name;
	/* Argument types and result, as in SYMBOLS: "u64,u32:i32". */
	const char *signature;
	napi_callback fn;
	/* Where in struct lib the resolved symbol goes. */
	size_t slot;
};

#define SLOT(f) (offsetof(struct lib, f))

static const struct entry ENTRIES[] = {
	{ "shmc_create", "u64,u32,u32,u32,u32,u32:i32", js_create, SLOT(create) },
	{ "shmc_destroy", "i32:i32", js_destroy, SLOT(destroy) },
	{ "shmc_attach_key", "u64,u32:i32", js_attach_key, SLOT(attach_key) },
	{ "shmc_attach_id", "i32,u32:i32", js_attach_id, SLOT(attach_id) },
	{ "shmc_attach_key_owned", "u64,u32,u32:i32", js_attach_key_owned, SLOT(attach_key_owned) },
	{ "shmc_attach_id_owned", "i32,u32,u32:i32", js_attach_id_owned, SLOT(attach_id_owned) },
	{ "shmc_lookup_key", "u64,buffer:i32", js_lookup_key, SLOT(lookup_key) },
	{ "shmc_lookup_id", "i32,buffer:i32", js_lookup_id, SLOT(lookup_id) },
	{ "shmc_detach", "i32:i32", js_detach, SLOT(detach) },
	{ "shmc_info", "i32,buffer:i32", js_info, SLOT(info) },
	{ "shmc_try_send", "i32,buffer,u32,u32:i32", js_try_send, SLOT(try_send) },
	{ "shmc_try_recv", "i32,buffer,u32:i32", js_try_recv, SLOT(try_recv) },
	{ "shmc_try_send_many", "i32,buffer,buffer,u32,u32:i32", js_try_send_many, SLOT(try_send_many) },
	{ "shmc_try_recv_many", "i32,buffer,u32,buffer,u32:i32", js_try_recv_many, SLOT(try_recv_many) },
	{ "shmc_doorbell_path", "i32,u32,buffer,u32:i32", js_doorbell_path, SLOT(doorbell_path) },
	{ "shmc_doorbell_seal", "i32,u32:i32", js_doorbell_seal, SLOT(doorbell_seal) },
	{ "shmc_park", "i32,u32:i32", js_park, SLOT(park) },
	{ "shmc_unpark", "i32,u32:i32", js_unpark, SLOT(unpark) },
	{ "shmc_try_loan_at", "i32,buffer:i32", js_try_loan_at, SLOT(try_loan_at) },
	{ "shmc_commit", "i32,u32,u32:i32", js_commit, SLOT(commit) },
	{ "shmc_abort", "i32:i32", js_abort, SLOT(abort_loan) },
	{ "shmc_try_recv_view_at", "i32,buffer:i32", js_try_recv_view_at, SLOT(try_recv_view_at) },
	{ "shmc_release", "i32:i32", js_release, SLOT(release) },
	{ "shmc_view_region", "i32,buffer:i32", js_view_region, SLOT(view_region) },
	{ "shmc_view_region_drop", "i32:i32", js_view_region_drop, SLOT(view_region_drop) },
	{ "shmc_try_recv_park", "i32,buffer,u32,u32:i32", js_try_recv_park, SLOT(try_recv_park) },
	{ "shmc_version", ":i32", js_version, SLOT(version) },
	{ "shmc_stats", "i32,buffer,u32:i32", js_stats, SLOT(stats) },
	{ "shmc_stats_key", "u64,buffer,u32:i32", js_stats_key, SLOT(stats_key) },
	{ "shmc_stats_id", "i32,buffer,u32:i32", js_stats_id, SLOT(stats_id) },
	{ "shmc_list", "buffer,u32:i32", js_list, SLOT(list) },
	{ "shmc_remove_key", "u64:i32", js_remove_key, SLOT(remove_key) },
	{ "shmc_remove_id", "i32:i32", js_remove_id, SLOT(remove_id) },
	{ "shmc_gc", ":i32", js_gc, SLOT(gc) },
};
#define ENTRY_COUNT (sizeof ENTRIES / sizeof ENTRIES[0])

_Static_assert(sizeof(struct lib) == ENTRY_COUNT * sizeof(void (*)(void)), "one table entry per struct lib member");
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "dlsym results fit function pointers");

static void throw_missing(napi_env env, const char *path, const char *symbol)
{
	char msg[PATH_CAP + 64];
	snprintf(msg, sizeof msg, "%s: undefined symbol: %s", path, symbol);
	napi_throw_error(env, NULL, msg);
}

/*
 * open(path): dlopen the library and return { shmc_create, ... }. The library
 * stays loaded for the life of the process: the functions returned may be
 * called until the end, and handles live in the library.
 */
static napi_value js_open(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return NULL;
	char path[PATH_CAP];
	size_t n = 0;
	if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n) != napi_ok) {
		napi_throw_type_error(env, NULL, "shmchan addon: open(path) needs a string");
		return NULL;
	}
	if (n + 1 >= sizeof path) {
		napi_throw_range_error(env, NULL, "shmchan addon: library path too long");
		return NULL;
	}
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *why = dlerror();
		napi_throw_error(env, NULL, why ? why : "dlopen failed");
		return NULL;
	}
	struct lib resolved;
	for (size_t i = 0; i < ENTRY_COUNT; i++) {
		void *sym = dlsym(dl, ENTRIES[i].name);
		if (!sym) {
			dlclose(dl);
			throw_missing(env, path, ENTRIES[i].name);
			return NULL;
		}
		/* POSIX: dlsym's object pointer holds a function's address. */
		memcpy((char *)&resolved + ENTRIES[i].slot, &sym, sizeof sym);
	}
	struct lib *l = malloc(sizeof *l);
	if (!l) {
		dlclose(dl);
		napi_throw_error(env, NULL, "shmchan addon: out of memory");
		return NULL;
	}
	*l = resolved;
	napi_value obj = NULL;
	if (napi_create_object(env, &obj) != napi_ok)
		goto fail;
	for (size_t i = 0; i < ENTRY_COUNT; i++) {
		napi_value fn;
		if (napi_create_function(env, ENTRIES[i].name, NAPI_AUTO_LENGTH, ENTRIES[i].fn, l, &fn) != napi_ok ||
		    napi_set_named_property(env, obj, ENTRIES[i].name, fn) != napi_ok)
			goto fail;
	}
	napi_value vb;
	if (napi_create_function(env, "viewBuffer", NAPI_AUTO_LENGTH, js_view_buffer, l, &vb) != napi_ok ||
	    napi_set_named_property(env, obj, "viewBuffer", vb) != napi_ok)
		goto fail;
	return obj;
fail:
	/* Functions already made may hold `l`: keep it and the library. */
	return NULL;
}

/* The registration macro defines its functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
	napi_value fn, sigs, s;
	if (napi_create_function(env, "open", NAPI_AUTO_LENGTH, js_open, NULL, &fn) != napi_ok ||
	    napi_set_named_property(env, exports, "open", fn) != napi_ok || napi_create_object(env, &sigs) != napi_ok)
		return NULL;
	for (size_t i = 0; i < ENTRY_COUNT; i++) {
		if (napi_create_string_utf8(env, ENTRIES[i].signature, NAPI_AUTO_LENGTH, &s) != napi_ok ||
		    napi_set_named_property(env, sigs, ENTRIES[i].name, s) != napi_ok)
			return NULL;
	}
	if (napi_set_named_property(env, exports, "signatures", sigs) != napi_ok)
		return NULL;
	return exports;
}
