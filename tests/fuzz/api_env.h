/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_api's environment: two local-provider tokens on tmpfs, made once
 * per process, and every input started from the same state of them.
 *
 *   "opt"  login optional, its token key unsealed before the input starts
 *          (no scrypt, no KMS call per input): most calls run here.
 *   "req"  login required; the user is logged in at the input's first use
 *          of this slot, through a session the program cannot name (the
 *          anchor), and stays logged in across inputs while nothing logs
 *          it out: scrypt (pin_kdf_cost 12) runs only when it must.
 *
 * Both hold token objects made at setup (keys that can and cannot be
 * read, a data object, a private key) and KMS key objects (envelope, AES,
 * RSA). Between inputs, sessions are closed and operations on the anchor
 * cancelled; if an input changed a store (a token object, a PIN, a wrong
 * PIN's count, an IV counter) the module is finalized, both stores are put
 * back as setup left them, and the module is initialized again. So each
 * input sees the same module, and its replay alone reproduces it.
 */
#ifndef P11KMS_FUZZ_API_ENV_H
#define P11KMS_FUZZ_API_ENV_H

#include "api_args.h"

extern CK_FUNCTION_LIST_3_0 *api_f;

#define API_SESSIONS 8
#define API_OBJECTS 24

/* Once per process (idempotent). */
void api_env_init(void);
/* Each input's start and end. */
void api_input_begin(void);
void api_input_end(void);

/* Arguments from the tables: mostly real handles, sometimes garbage
 * (CK_INVALID_HANDLE, all ones, a real handle with high bits set, a handle
 * closed or destroyed earlier in this input). Never a small made-up
 * number: handles are counters, and one that is live in one run but not
 * in another would make inputs irreproducible. */
CK_SESSION_HANDLE api_session(api_prog *r);
CK_OBJECT_HANDLE api_object(api_prog *r);
CK_SLOT_ID api_slot(api_prog *r);
/* The table's object i (CK_INVALID_HANDLE if none). */
CK_OBJECT_HANDLE api_object_at(unsigned i);
/* What the program made or ended, for the tables. */
void api_session_opened(CK_SESSION_HANDLE h);
void api_session_closed(CK_SESSION_HANDLE h);
void api_object_made(CK_OBJECT_HANDLE h);
void api_object_gone(CK_OBJECT_HANDLE h);
/* The program finalized the module: the input's end starts it again. */
void api_module_finalized(void);
/* The world the module lives in, which the input's end puts back: the
 * module's clock moved on (past revalidate_seconds, past the rotation
 * age), and the local provider's key file made readable by others,
 * removed, put back, replaced by another key or by the original. */
void api_clock_advance(CK_ULONG seconds);
/* This input moved the clock or changed the key file: the revalidation
 * thread may revoke a token at any moment from then on (in the middle of
 * an operation, which then ends with CKR_DEVICE_ERROR). */
bool api_env_touched(void);
void api_keyfile(uint8_t how);

/* Budgets per input, so that every input stays fast: four PIN calls (each
 * runs scrypt once or twice: ~14 ms with the real one, the suite's replay,
 * where an input without one takes ~0.3 ms; api_fastkdf.c), three
 * C_Initialize and one C_Finalize (after which the input's end starts the
 * module again: ~5 ms). A call over budget is skipped. */
bool api_spend_pin(void);
bool api_spend_init(void);
bool api_spend_finalize(void);

/* "config=PATH": the init string the module is initialized with. */
const char *api_init_string(void);
/* The DER of a real X.509 certificate (the EC signing key's), for
 * CKA_VALUE of certificate templates; NULL before setup. */
const uint8_t *api_cert_der(size_t *n);
/* Is slot one of ours? (a slot list must not name others) */
bool api_slot_known(CK_SLOT_ID s);

#define SO_PIN "12345678"
#define USER_PIN "1234"

#endif
