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
 * One wrapper, call(), serves every function of the table (ENTRIES): it
 * takes the arguments by the kinds of the function's shape (its C
 * prototype), checks the buffers against the lengths passed with them by
 * the entry's rules (a length past the end of its buffer, or an array that
 * is misaligned, returns -EINVAL instead of reaching the C library), then
 * calls the function through its prototype. Beside the table, viewBuffer(h)
 * makes the external ArrayBuffer of a handle's zero-copy view region (no
 * address passes through JavaScript).
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

/* For its counts only: the C library itself is dlopened, never linked. */
#include "../shmchan.h"

/* The buffers shmc_info(), shmc_lookup_key() and shmc_view_region() fill
 * hold this many u64 (shmchan.h). */
#define INFO_COUNT ((uint32_t)SHMC_INFO_COUNT)
#define LOOKUP_COUNT ((uint32_t)SHMC_LOOKUP_COUNT)
#define VIEW_REGION_COUNT 3u /* address, length, token */
/* Longest library path accepted by open(), with its NUL. */
#define PATH_CAP 4096
/* Most arguments a C function of the table takes, and length rules it has. */
#define MAX_ARGS 6
#define MAX_RULES 2

/* ---- shapes: the C prototypes of the table --------------------------------- */

/*
 * One argument, taken by its kind (a letter): 'i' an i32 and 'u' a u32 (a
 * number), 'q' a u64 (a BigInt), 'b' a buffer (an ArrayBufferView: its
 * bytes and their count).
 */
struct arg {
	union {
		int32_t i;
		uint32_t u;
		uint64_t q;
		void *p;
	};
	size_t len;
};

/*
 * Every distinct prototype among the table's functions (all return int):
 * its name, the kinds of its arguments, its parameters, and how the
 * arguments a[] are passed to them. A name spells the parameters: I int,
 * U uint32_t, Q uint64_t, P32 and P64 uint32_t * and uint64_t *, PV void *,
 * PC char *, C const. C calls a function only through its own prototype,
 * hence one per pointer type too (try_send's const void *, try_recv_park's
 * void *).
 */
#define SHAPES(X)                                                                                               \
	X(V, "", (void), ())                                                                                    \
	X(I, "i", (int), (a[0].i))                                                                              \
	X(Q, "q", (uint64_t), (a[0].q))                                                                         \
	X(I_U, "iu", (int, uint32_t), (a[0].i, a[1].u))                                                         \
	X(Q_U, "qu", (uint64_t, uint32_t), (a[0].q, a[1].u))                                                    \
	X(I_U_U, "iuu", (int, uint32_t, uint32_t), (a[0].i, a[1].u, a[2].u))                                    \
	X(Q_U_U, "quu", (uint64_t, uint32_t, uint32_t), (a[0].q, a[1].u, a[2].u))                               \
	X(Q_U_U_U_U_U, "quuuuu", (uint64_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t),                  \
	  (a[0].q, a[1].u, a[2].u, a[3].u, a[4].u, a[5].u))                                                     \
	X(I_P32, "ib", (int, uint32_t *), (a[0].i, a[1].p))                                                     \
	X(I_P64, "ib", (int, uint64_t *), (a[0].i, a[1].p))                                                     \
	X(Q_P64, "qb", (uint64_t, uint64_t *), (a[0].q, a[1].p))                                                \
	X(P64_U, "bu", (uint64_t *, uint32_t), (a[0].p, a[1].u))                                                \
	X(I_P64_U, "ibu", (int, uint64_t *, uint32_t), (a[0].i, a[1].p, a[2].u))                                \
	X(Q_P64_U, "qbu", (uint64_t, uint64_t *, uint32_t), (a[0].q, a[1].p, a[2].u))                           \
	X(I_PV_U, "ibu", (int, void *, uint32_t), (a[0].i, a[1].p, a[2].u))                                     \
	X(I_PV_U_U, "ibuu", (int, void *, uint32_t, uint32_t), (a[0].i, a[1].p, a[2].u, a[3].u))                \
	X(I_CPV_U_U, "ibuu", (int, const void *, uint32_t, uint32_t), (a[0].i, a[1].p, a[2].u, a[3].u))         \
	X(I_U_PC_U, "iubu", (int, uint32_t, char *, uint32_t), (a[0].i, a[1].u, a[2].p, a[3].u))                \
	X(I_CPV_CP32_U_U, "ibbuu", (int, const void *, const uint32_t *, uint32_t, uint32_t),                   \
	  (a[0].i, a[1].p, a[2].p, a[3].u, a[4].u))                                                             \
	X(I_PV_U_P32_U, "ibubu", (int, void *, uint32_t, uint32_t *, uint32_t),                                 \
	  (a[0].i, a[1].p, a[2].u, a[3].p, a[4].u))

#define SHAPE_NAME(name, kinds, params, args) name,
#define SHAPE_KINDS(name, kinds, params, args) [name] = kinds,
#define SHAPE_ARITY(name, kinds, params, args) [name] = sizeof kinds - 1,
#define SHAPE_FITS(name, kinds, params, args) _Static_assert(sizeof kinds - 1 <= MAX_ARGS, #name " takes too many");
#define SHAPE_CALL(name, kinds, params, args) \
	case name:                            \
		return ((int(*) params)fn) args;

enum shape { SHAPES(SHAPE_NAME) };
static const char *const KINDS[] = { SHAPES(SHAPE_KINDS) };
static const uint8_t ARITY[] = { SHAPES(SHAPE_ARITY) };
SHAPES(SHAPE_FITS)

/* Calls @fn, whose prototype is @shape, with the arguments @a. */
static int invoke(enum shape shape, void (*fn)(void), const struct arg *a)
{
	switch (shape) {
		SHAPES(SHAPE_CALL)
	}
	return -ENOSYS; /* not reached: every shape has its case */
}

/* ---- length rules --------------------------------------------------------- */

/*
 * What a buffer argument a[buf] must hold, checked before the call: `count`
 * elements of `width` bytes, aligned to `width`, where `count` is the u32
 * argument a[count] (COUNTED) or the number `fixed` (FIXED); or (SUMMED) as
 * many bytes as the first a[count] u32 of buffer a[lens] add up to (a rule
 * before it must have checked a[lens]).
 */
struct rule {
	enum { NO_RULE, COUNTED, FIXED, SUMMED } how;
	uint8_t buf, width, count, lens;
	uint32_t fixed;
};

/* a[b] must hold a[n] bytes / aligned u32 / aligned u64. */
#define BYTES(b, n) { .how = COUNTED, .buf = b, .width = 1, .count = n }
#define U32S(b, n) { .how = COUNTED, .buf = b, .width = 4, .count = n }
#define U64S(b, n) { .how = COUNTED, .buf = b, .width = 8, .count = n }
/* a[b] must hold n aligned u32 / u64. */
#define FIXED_U32S(b, n) { .how = FIXED, .buf = b, .width = 4, .fixed = n }
#define FIXED_U64S(b, n) { .how = FIXED, .buf = b, .width = 8, .fixed = n }
/* a[b] must hold the a[n] messages whose lengths are the u32 of buffer a[lens]. */
#define SUM_OF(b, lens_, n) { .how = SUMMED, .buf = b, .width = 1, .count = n, .lens = lens_ }

/* Whether the arguments @a meet rule @r. */
static bool holds(const struct rule *r, const struct arg *a)
{
	uint64_t n = r->how == FIXED ? r->fixed : a[r->count].u;
	if (r->how == SUMMED) {
		/* The library reads the messages back to back: they must all lie in a[buf]. */
		const uint32_t *len = a[r->lens].p;
		uint64_t total = 0;
		for (uint64_t i = 0; i < n; i++)
			total += len[i];
		n = total;
	}
	return ((uintptr_t)a[r->buf].p & (r->width - 1u)) == 0 && n * r->width <= a[r->buf].len;
}

/* ---- the table ------------------------------------------------------------ */

struct entry {
	const char *name;
	enum shape shape;
	struct rule rules[MAX_RULES];
};

/* An entry without rules leaves them zero: NO_RULE. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct entry ENTRIES[] = {
	{ "shmc_create", Q_U_U_U_U_U },
	{ "shmc_destroy", I },
	{ "shmc_attach_key", Q_U },
	{ "shmc_attach_id", I_U },
	{ "shmc_attach_key_owned", Q_U_U },
	{ "shmc_attach_id_owned", I_U_U },
	{ "shmc_lookup_key", Q_P64, { FIXED_U64S(1, LOOKUP_COUNT) } },
	{ "shmc_lookup_id", I_P64, { FIXED_U64S(1, LOOKUP_COUNT) } },
	{ "shmc_detach", I },
	{ "shmc_info", I_P64, { FIXED_U64S(1, INFO_COUNT) } },
	{ "shmc_try_send", I_CPV_U_U, { BYTES(1, 2) } },
	{ "shmc_try_recv", I_PV_U, { BYTES(1, 2) } },
	{ "shmc_try_send_many", I_CPV_CP32_U_U, { U32S(2, 3), SUM_OF(1, 2, 3) } },
	{ "shmc_try_recv_many", I_PV_U_P32_U, { BYTES(1, 2), U32S(3, 4) } },
	{ "shmc_doorbell_path", I_U_PC_U, { BYTES(2, 3) } },
	{ "shmc_doorbell_seal", I_U },
	{ "shmc_park", I_U },
	{ "shmc_unpark", I_U },
	{ "shmc_try_loan_at", I_P32, { FIXED_U32S(1, 1) } },
	{ "shmc_commit", I_U_U },
	{ "shmc_abort", I },
	{ "shmc_try_recv_view_at", I_P32, { FIXED_U32S(1, 1) } },
	{ "shmc_release", I },
	{ "shmc_view_region", I_P64, { FIXED_U64S(1, VIEW_REGION_COUNT) } },
	{ "shmc_view_region_drop", I },
	{ "shmc_try_recv_park", I_PV_U_U, { BYTES(1, 2) } },
	{ "shmc_version", V },
	{ "shmc_stats", I_P64_U, { U64S(1, 2) } },
	{ "shmc_stats_key", Q_P64_U, { U64S(1, 2) } },
	{ "shmc_stats_id", I_P64_U, { U64S(1, 2) } },
	{ "shmc_list", P64_U, { U64S(0, 1) } },
	{ "shmc_remove_key", Q },
	{ "shmc_remove_id", I },
	{ "shmc_gc", V },
};
#pragma GCC diagnostic pop
#define ENTRY_COUNT (sizeof ENTRIES / sizeof ENTRIES[0])

/*
 * Whether every rule names arguments of the kinds it reads (checked when the
 * addon loads: a wrong index would check bytes other than those passed).
 */
static bool rules_fit_shapes(void)
{
	for (const struct entry *e = ENTRIES; e < ENTRIES + ENTRY_COUNT; e++) {
		const char *k = KINDS[e->shape];
		size_t n = ARITY[e->shape];
		for (const struct rule *r = e->rules; r < e->rules + MAX_RULES && r->how != NO_RULE; r++) {
			bool buf = r->buf < n && k[r->buf] == 'b';
			bool count = r->how == FIXED || (r->count < n && k[r->count] == 'u');
			bool lens = r->how != SUMMED || (r->lens < n && k[r->lens] == 'b');
			if (!buf || !count || !lens)
				return false;
		}
	}
	return true;
}

/* Room for MAX_ARGS kinds of up to 6 letters, their commas, ":i32" and the NUL. */
#define SIGNATURE_CAP (MAX_ARGS * 7 + 5)

/* The signature of @e as SYMBOLS spells it: "i32,buffer,u32:i32". */
static void signature_of(const struct entry *e, char out[SIGNATURE_CAP])
{
	static const char *const NAME[] = { ['i'] = "i32", ['u'] = "u32", ['q'] = "u64", ['b'] = "buffer" };
	out[0] = '\0';
	for (const char *k = KINDS[e->shape]; *k; k++) {
		if (k != KINDS[e->shape])
			strcat(out, ",");
		strcat(out, NAME[(unsigned char)*k]);
	}
	strcat(out, ":i32");
}

/* ---- arguments ------------------------------------------------------------ */

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
static bool get_buf(napi_env env, napi_value v, struct arg *out)
{
	bool is = false;
	napi_typedarray_type type;
	size_t count = 0;
	if (napi_is_typedarray(env, v, &is) == napi_ok && is &&
	    napi_get_typedarray_info(env, v, &type, &count, &out->p, NULL, NULL) == napi_ok) {
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
	    napi_get_dataview_info(env, v, &out->len, &out->p, NULL, NULL) == napi_ok)
		return true;
	napi_throw_type_error(env, NULL, "shmchan addon: expected an ArrayBufferView");
	return false;
}

/* Argument @v as kind @k (see struct arg); false with the error thrown. */
static bool get_arg(napi_env env, char k, napi_value v, struct arg *out)
{
	switch (k) {
	case 'i':
		return get_i32(env, v, &out->i);
	case 'u':
		return get_u32(env, v, &out->u);
	case 'q':
		return get_u64(env, v, &out->q);
	default:
		return get_buf(env, v, out);
	}
}

static napi_value too_few(napi_env env)
{
	napi_throw_type_error(env, NULL, "shmchan addon: too few arguments");
	return NULL;
}

static napi_value result(napi_env env, int rc)
{
	napi_value v = NULL;
	napi_create_int32(env, rc, &v);
	return v;
}

/* ---- the calls ------------------------------------------------------------ */

/* A C function of the table as open() resolved it: call()'s data. */
struct bound {
	const struct entry *e;
	void (*fn)(void);
};

/* The library open() returns: the table's functions and the two that viewBuffer() calls. */
struct lib {
	struct bound fns[ENTRY_COUNT];
	int (*view_region)(int, uint64_t *);
	int (*view_region_drop)(int);
};

/*
 * The wrapper of every C function of the table: its arguments by the kinds
 * of its shape, then its rules (-EINVAL if a buffer falls short), then the
 * call.
 */
static napi_value call(napi_env env, napi_callback_info info)
{
	napi_value v[MAX_ARGS];
	size_t argc = MAX_ARGS;
	void *data = NULL;
	if (napi_get_cb_info(env, info, &argc, v, NULL, &data) != napi_ok)
		return NULL;
	const struct bound *b = data;
	const char *kinds = KINDS[b->e->shape];
	size_t n = ARITY[b->e->shape];
	if (argc < n)
		return too_few(env);
	struct arg a[MAX_ARGS];
	for (size_t i = 0; i < n; i++)
		if (!get_arg(env, kinds[i], v[i], &a[i]))
			return NULL;
	for (const struct rule *r = b->e->rules; r < b->e->rules + MAX_RULES && r->how != NO_RULE; r++)
		if (!holds(r, a))
			return result(env, -EINVAL);
	return result(env, invoke(b->e->shape, b->fn, a));
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
	napi_value v[1];
	size_t argc = 1;
	void *data = NULL;
	if (napi_get_cb_info(env, info, &argc, v, NULL, &data) != napi_ok)
		return NULL;
	struct lib *l = data;
	int32_t h;
	if (argc < 1)
		return too_few(env);
	if (!get_i32(env, v[0], &h))
		return NULL;
	uint64_t out[VIEW_REGION_COUNT];
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

/* ---- open() and the module ------------------------------------------------ */

_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "dlsym results fit function pointers");

/* Symbol @name of @dl into the function pointer at @slot; false if @dl has none. */
static bool resolve(void *dl, const char *name, void *slot)
{
	void *sym = dlsym(dl, name);
	/* POSIX: dlsym's object pointer holds a function's address. */
	memcpy(slot, &sym, sizeof sym);
	return sym != NULL;
}

static void throw_missing(napi_env env, const char *path, const char *symbol)
{
	char msg[PATH_CAP + 64];
	snprintf(msg, sizeof msg, "%s: undefined symbol: %s", path, symbol);
	napi_throw_error(env, NULL, msg);
}

static bool set_function(napi_env env, napi_value obj, const char *name, napi_callback fn, void *data)
{
	napi_value f;
	return napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, data, &f) == napi_ok &&
	       napi_set_named_property(env, obj, name, f) == napi_ok;
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
	struct lib *l = malloc(sizeof *l);
	if (!l) {
		dlclose(dl);
		napi_throw_error(env, NULL, "shmchan addon: out of memory");
		return NULL;
	}
	for (size_t i = 0; i < ENTRY_COUNT; i++) {
		l->fns[i].e = &ENTRIES[i];
		if (!resolve(dl, ENTRIES[i].name, &l->fns[i].fn)) {
			free(l);
			dlclose(dl);
			throw_missing(env, path, ENTRIES[i].name);
			return NULL;
		}
	}
	/* Both are in the table, so present. */
	resolve(dl, "shmc_view_region", &l->view_region);
	resolve(dl, "shmc_view_region_drop", &l->view_region_drop);
	napi_value obj = NULL;
	if (napi_create_object(env, &obj) != napi_ok)
		return NULL;
	for (size_t i = 0; i < ENTRY_COUNT; i++)
		if (!set_function(env, obj, ENTRIES[i].name, call, &l->fns[i]))
			return NULL;
	if (!set_function(env, obj, "viewBuffer", js_view_buffer, l))
		return NULL;
	/* On failure, functions already made may hold `l`: it and the library stay. */
	return obj;
}

/* The registration macro defines its functions without prototypes. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
	if (!rules_fit_shapes()) {
		napi_throw_error(env, NULL, "shmchan addon: a length rule names an argument of another kind");
		return NULL;
	}
	napi_value sigs, s;
	if (!set_function(env, exports, "open", js_open, NULL) || napi_create_object(env, &sigs) != napi_ok)
		return NULL;
	for (size_t i = 0; i < ENTRY_COUNT; i++) {
		char sig[SIGNATURE_CAP];
		signature_of(&ENTRIES[i], sig);
		if (napi_create_string_utf8(env, sig, NAPI_AUTO_LENGTH, &s) != napi_ok ||
		    napi_set_named_property(env, sigs, ENTRIES[i].name, s) != napi_ok)
			return NULL;
	}
	if (napi_set_named_property(env, exports, "signatures", sigs) != napi_ok)
		return NULL;
	return exports;
}
