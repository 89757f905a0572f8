/* SPDX-License-Identifier: MIT */
/*
 * bench/ffi/variants.c: a Node-API module for bench/ffi.mjs only. It binds
 * shmc_try_send the ways the product addon (csrc/node/shmchan_node.c) does
 * not, so that bench/ffi.mjs can price each way of passing the message
 * pointer through Node-API: as a plain number, as a bigint; plus the same
 * call made from C in a loop (the library's own cost) and the address of a
 * typed array (for the koffi and node:ffi pointer variants).
 * Built by bench/ffi.mjs with cc; never shipped.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static int (*try_send)(int, const void *, uint32_t, uint32_t);

static napi_value int_result(napi_env env, int rc)
{
	napi_value v;
	napi_create_int32(env, rc, &v);
	return v;
}

/* open(path): resolve shmc_try_send; returns 0 or -1. */
static napi_value js_open(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value a[1];
	char path[4096];
	napi_get_cb_info(env, info, &argc, a, NULL, NULL);
	if (napi_get_value_string_utf8(env, a[0], path, sizeof path, NULL) != napi_ok)
		return int_result(env, -1);
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	void *sym = dl ? dlsym(dl, "shmc_try_send") : NULL;
	if (!sym)
		return int_result(env, -1);
	*(void **)&try_send = sym;
	return int_result(env, 0);
}

/* try_send_number(h, address: number, len, target) */
static napi_value js_try_send_number(napi_env env, napi_callback_info info)
{
	size_t argc = 4;
	napi_value a[4];
	int32_t h;
	int64_t addr;
	uint32_t len, target;
	napi_get_cb_info(env, info, &argc, a, NULL, NULL);
	if (napi_get_value_int32(env, a[0], &h) != napi_ok || napi_get_value_int64(env, a[1], &addr) != napi_ok ||
	    napi_get_value_uint32(env, a[2], &len) != napi_ok || napi_get_value_uint32(env, a[3], &target) != napi_ok) {
		napi_throw_type_error(env, NULL, "bad arguments");
		return NULL;
	}
	return int_result(env, try_send(h, (const void *)(uintptr_t)addr, len, target));
}

/* try_send_bigint(h, address: bigint, len, target) */
static napi_value js_try_send_bigint(napi_env env, napi_callback_info info)
{
	size_t argc = 4;
	napi_value a[4];
	int32_t h;
	uint64_t addr;
	bool lossless;
	uint32_t len, target;
	napi_get_cb_info(env, info, &argc, a, NULL, NULL);
	if (napi_get_value_int32(env, a[0], &h) != napi_ok ||
	    napi_get_value_bigint_uint64(env, a[1], &addr, &lossless) != napi_ok ||
	    napi_get_value_uint32(env, a[2], &len) != napi_ok || napi_get_value_uint32(env, a[3], &target) != napi_ok) {
		napi_throw_type_error(env, NULL, "bad arguments");
		return NULL;
	}
	return int_result(env, try_send(h, (const void *)(uintptr_t)addr, len, target));
}

/* address(typedArray): its data pointer as a bigint. */
static napi_value js_address(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value a[1], v;
	void *data = NULL;
	napi_get_cb_info(env, info, &argc, a, NULL, NULL);
	if (napi_get_typedarray_info(env, a[0], NULL, NULL, &data, NULL, NULL) != napi_ok) {
		napi_throw_type_error(env, NULL, "expected a typed array");
		return NULL;
	}
	napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &v);
	return v;
}

/* c_loop(h, typedArray, len, n): ns per shmc_try_send, called n times from C. */
static napi_value js_c_loop(napi_env env, napi_callback_info info)
{
	size_t argc = 4;
	napi_value a[4], v;
	int32_t h;
	void *data = NULL;
	uint32_t len, n;
	napi_get_cb_info(env, info, &argc, a, NULL, NULL);
	if (napi_get_value_int32(env, a[0], &h) != napi_ok ||
	    napi_get_typedarray_info(env, a[1], NULL, NULL, &data, NULL, NULL) != napi_ok ||
	    napi_get_value_uint32(env, a[2], &len) != napi_ok || napi_get_value_uint32(env, a[3], &n) != napi_ok) {
		napi_throw_type_error(env, NULL, "bad arguments");
		return NULL;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint32_t i = 0; i < n; i++)
		if (try_send(h, data, len, 0) < 0)
			return int_result(env, -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
	napi_create_double(env, ns / n, &v);
	return v;
}

#pragma GCC diagnostic ignored "-Wmissing-prototypes"
NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{ "open", js_open },
		{ "try_send_number", js_try_send_number },
		{ "try_send_bigint", js_try_send_bigint },
		{ "address", js_address },
		{ "c_loop", js_c_loop },
	};
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		napi_value f;
		napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
		napi_set_named_property(env, exports, fns[i].name, f);
	}
	return exports;
}
