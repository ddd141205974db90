/* SPDX-License-Identifier: Apache-2.0 */
/* What /proc says about this process, for tests of the module's threads. */
#ifndef P11KMS_TEST_PROC_H
#define P11KMS_TEST_PROC_H

/* Threads of this process whose name (comm) begins with name; -1 when
 * /proc/self/task cannot be read. The module names its revalidation
 * thread "p11kms-reval". */
int proc_threads_named(const char *name);

#endif
