/*
 * hash — content hashes for blob deduplication (SHA-256, libcrypto) and a cheap stable hash for
 * spreading schedules (FNV-1a). Pure functions; any thread.
 */
#ifndef CD_HASH_H
#define CD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CD_HASH_SHA256_LEN 32
#define CD_HASH_SHA256_HEX (CD_HASH_SHA256_LEN * 2 + 1)

int cd_hash_sha256(const void *data, size_t len, uint8_t out[CD_HASH_SHA256_LEN]);
void cd_hash_hex(const uint8_t *bytes, size_t len, char *out /* 2*len+1 */);
uint64_t cd_hash_fnv1a64(const void *data, size_t len);
uint64_t cd_hash_fnv1a64_str(const char *s);

#endif
