/* SPDX-License-Identifier: Apache-2.0 */
#include "tpm/tpm.h"

#include <string.h>

#include "util/util.h"

/* Layout of the tpm2-tools serialized PCR file (host structs, little-endian x86). */
#define SEL_ENTRIES 16  /* TPM2_NUM_PCR_BANKS */
#define SEL_ENTRY_SIZE 8 /* hash u16, sizeofSelect u8, pcrSelect[4], 1 pad byte */
#define SEL_SIZE (4 + SEL_ENTRIES * SEL_ENTRY_SIZE)
#define DIGEST_SIZE 66   /* TPM2B_DIGEST: size u16 + 64 bytes */
#define LIST_DIGESTS 8
#define LIST_SIZE (4 + LIST_DIGESTS * DIGEST_SIZE)
#define MAX_LISTS 64

const struct tpm_pcr_bank *tpm_pcrs_bank(const struct tpm_pcrs *pcrs, uint16_t alg)
{
	for (size_t i = 0; i < pcrs->nbanks; i++)
		if (pcrs->bank[i].alg == alg)
			return &pcrs->bank[i];
	return NULL;
}

int tpm_pcrs_add_bank(struct tpm_pcrs *pcrs, uint16_t alg, struct tpm_pcr_bank **ret)
{
	if (!kq_hash_size(alg))
		return kq_err(-ENOTSUP, "unsupported PCR bank algorithm 0x%04x", alg);
	for (size_t i = 0; i < pcrs->nbanks; i++)
		if (pcrs->bank[i].alg == alg) {
			*ret = &pcrs->bank[i];
			return 0;
		}
	if (pcrs->nbanks >= TPM_MAX_BANKS)
		return kq_err(-E2BIG, "more than %d PCR banks", TPM_MAX_BANKS);
	memset(&pcrs->bank[pcrs->nbanks], 0, sizeof(pcrs->bank[0]));
	pcrs->bank[pcrs->nbanks].alg = alg;
	*ret = &pcrs->bank[pcrs->nbanks++];
	return 0;
}

static uint32_t select_mask(const TPMS_PCR_SELECTION *s)
{
	uint32_t m = 0;

	for (unsigned i = 0; i < s->sizeofSelect && i < 4; i++)
		m |= (uint32_t)s->pcrSelect[i] << (8 * i);
	return m;
}

int tpm_pcrfile_parse(const uint8_t *buf, size_t len, struct tpm_pcrs *ret)
{
	struct kq_cur c = kq_cur_init(buf, len);
	struct tpm_pcrs pcrs; /* banks are cleared as they are added */
	uint32_t nsel, nlists;
	size_t bank = 0;
	unsigned pcr = 0;
	int r;

	pcrs.nbanks = 0;
	if (len > TPM_MAX_BLOB)
		return kq_err(TPM_E_MALFORMED, "PCR file of %zu bytes is over the limit", len);
	if (len < SEL_SIZE + 4)
		return kq_err(TPM_E_MALFORMED, "PCR file too short (%zu bytes)", len);
	r = kq_cur_u32le(&c, &nsel);
	if (r < 0)
		return r;
	if (nsel > SEL_ENTRIES)
		return kq_err(TPM_E_MALFORMED, "PCR file selects %u banks (max %d)", nsel, SEL_ENTRIES);
	for (uint32_t i = 0; i < SEL_ENTRIES; i++) {
		uint16_t alg;
		uint8_t sizeof_select, sel[4];
		struct tpm_pcr_bank *b;

		if ((r = kq_cur_u16le(&c, &alg)) < 0 || (r = kq_cur_u8(&c, &sizeof_select)) < 0 ||
		    (r = kq_cur_copy(&c, sel, 4)) < 0 || (r = kq_cur_skip(&c, 1)) < 0)
			return r;
		if (i >= nsel)
			continue;
		if (sizeof_select > 4)
			return kq_err(TPM_E_MALFORMED, "PCR selection %u: sizeofSelect %u", i, sizeof_select);
		if (tpm_pcrs_bank(&pcrs, alg))
			return kq_err(TPM_E_MALFORMED, "PCR file selects bank 0x%04x twice", alg);
		r = tpm_pcrs_add_bank(&pcrs, alg, &b);
		if (r < 0)
			return kq_err_ctx(TPM_E_MALFORMED, "PCR file: ");
		b->mask = select_mask(&(TPMS_PCR_SELECTION){ .hash = alg, .sizeofSelect = sizeof_select,
							  .pcrSelect = { sel[0], sel[1], sel[2], sel[3] } });
		if (b->mask >> TPM_NUM_PCRS)
			return kq_err(TPM_E_MALFORMED, "PCR file selects a PCR above %d", TPM_NUM_PCRS - 1);
	}
	if ((r = kq_cur_u32le(&c, &nlists)) < 0)
		return r;
	if (nlists > MAX_LISTS)
		return kq_err(TPM_E_MALFORMED, "PCR file has %u digest lists (max %d)", nlists, MAX_LISTS);
	if (kq_cur_left(&c) != (size_t)nlists * LIST_SIZE)
		return kq_err(TPM_E_MALFORMED, "PCR file: %u digest lists need %zu bytes, %zu present",
			      nlists, (size_t)nlists * LIST_SIZE, kq_cur_left(&c));

	/* digests fill the selected PCRs bank by bank, PCR numbers ascending */
	for (uint32_t l = 0; l < nlists; l++) {
		uint32_t count;

		if ((r = kq_cur_u32le(&c, &count)) < 0)
			return r;
		if (count > LIST_DIGESTS)
			return kq_err(TPM_E_MALFORMED, "PCR file: digest list %u holds %u digests", l, count);
		for (uint32_t d = 0; d < LIST_DIGESTS; d++) {
			uint16_t size;
			const uint8_t *val;

			if ((r = kq_cur_u16le(&c, &size)) < 0 || (r = kq_cur_bytes(&c, 64, &val)) < 0)
				return r;
			if (d >= count)
				continue;
			while (bank < pcrs.nbanks && !(pcrs.bank[bank].mask >> pcr)) {
				bank++;
				pcr = 0;
			}
			if (bank >= pcrs.nbanks)
				return kq_err(TPM_E_MALFORMED, "PCR file holds more digests than it selects");
			while (!(pcrs.bank[bank].mask & (1u << pcr)))
				pcr++;
			if (size != kq_hash_size(pcrs.bank[bank].alg))
				return kq_err(TPM_E_MALFORMED, "PCR file: %s PCR %u has a %u-byte digest",
					      kq_hash_name(pcrs.bank[bank].alg), pcr, size);
			memcpy(pcrs.bank[bank].value[pcr], val, size);
			pcr++;
		}
	}
	while (bank < pcrs.nbanks && !(pcrs.bank[bank].mask >> pcr)) {
		bank++;
		pcr = 0;
	}
	if (bank < pcrs.nbanks)
		return kq_err(TPM_E_MALFORMED, "PCR file holds fewer digests than it selects");
	/* copy only the banks in use: the struct is large */
	ret->nbanks = pcrs.nbanks;
	memcpy(ret->bank, pcrs.bank, pcrs.nbanks * sizeof(pcrs.bank[0]));
	return 0;
}

static void put_u16le(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int tpm_pcrfile_write(const struct tpm_pcrs *pcrs, uint8_t **ret, size_t *ret_len)
{
	size_t ndigests = 0, nlists, len, d = 0;
	_cleanup_free_ uint8_t *out = NULL;
	uint8_t *p;

	if (pcrs->nbanks > SEL_ENTRIES)
		return kq_err(-EINVAL, "too many banks");
	for (size_t b = 0; b < pcrs->nbanks; b++) {
		if (pcrs->bank[b].mask >> TPM_NUM_PCRS || !kq_hash_size(pcrs->bank[b].alg))
			return kq_err(-EINVAL, "bank %zu has an unknown algorithm or a PCR above %d",
				      b, TPM_NUM_PCRS - 1);
		ndigests += (size_t)__builtin_popcount(pcrs->bank[b].mask);
	}
	nlists = (ndigests + LIST_DIGESTS - 1) / LIST_DIGESTS;
	len = SEL_SIZE + 4 + nlists * LIST_SIZE;
	out = calloc(1, len);
	if (!out)
		return kq_err(-ENOMEM, "out of memory");
	put_u32le(out, (uint32_t)pcrs->nbanks);
	for (size_t b = 0; b < pcrs->nbanks; b++) {
		p = out + 4 + b * SEL_ENTRY_SIZE;
		put_u16le(p, pcrs->bank[b].alg);
		p[2] = 3;
		p[3] = (uint8_t)pcrs->bank[b].mask;
		p[4] = (uint8_t)(pcrs->bank[b].mask >> 8);
		p[5] = (uint8_t)(pcrs->bank[b].mask >> 16);
	}
	put_u32le(out + SEL_SIZE, (uint32_t)nlists);
	for (size_t b = 0; b < pcrs->nbanks; b++) {
		size_t sz = kq_hash_size(pcrs->bank[b].alg);
		for (unsigned i = 0; i < TPM_NUM_PCRS; i++) {
			if (!(pcrs->bank[b].mask & (1u << i)))
				continue;
			p = out + SEL_SIZE + 4 + (d / LIST_DIGESTS) * LIST_SIZE;
			put_u32le(p, (uint32_t)((ndigests - d / LIST_DIGESTS * LIST_DIGESTS) > LIST_DIGESTS
						     ? LIST_DIGESTS
						     : ndigests - d / LIST_DIGESTS * LIST_DIGESTS));
			p += 4 + (d % LIST_DIGESTS) * DIGEST_SIZE;
			put_u16le(p, (uint16_t)sz);
			memcpy(p + 2, pcrs->bank[b].value[i], sz);
			d++;
		}
	}
	*ret = TAKE_PTR(out);
	*ret_len = len;
	return 0;
}

int tpm_pcrs_digest(const struct tpm_pcrs *pcrs, const TPML_PCR_SELECTION *sel, uint16_t alg,
		    uint8_t *out, size_t *ret_len)
{
	const EVP_MD *md = kq_md(alg);
	EVP_MD_CTX *ctx;
	int r = 0;

	if (!md)
		return kq_err(-ENOTSUP, "unsupported hash algorithm 0x%04x", alg);
	if (sel->count > TPM2_NUM_PCR_BANKS)
		return kq_err(TPM_E_MALFORMED, "PCR selection of %u banks", sel->count);
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return kq_err(-ENOMEM, "digest setup failed");
	}
	for (uint32_t i = 0; i < sel->count && r == 0; i++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
		const struct tpm_pcr_bank *b = tpm_pcrs_bank(pcrs, s->hash);
		uint32_t m = select_mask(s);

		if (s->sizeofSelect > 4) {
			r = kq_err(TPM_E_MALFORMED, "PCR selection sizeofSelect %u", s->sizeofSelect);
			break;
		}
		if (!m)
			continue;
		if (m >> TPM_NUM_PCRS) {
			r = kq_err(TPM_E_PCRS, "quote selects a PCR above %d", TPM_NUM_PCRS - 1);
			break;
		}
		if (!b || (b->mask & m) != m) {
			r = kq_err(TPM_E_PCRS, "no value for a quoted %s PCR",
				   kq_hash_name(s->hash) ? kq_hash_name(s->hash) : "unknown-bank");
			break;
		}
		for (unsigned p = 0; p < TPM_NUM_PCRS; p++)
			if (m & (1u << p))
				if (EVP_DigestUpdate(ctx, b->value[p], kq_hash_size(s->hash)) != 1)
					r = kq_err(-EIO, "digest failed");
	}
	if (r == 0) {
		unsigned int n;
		if (EVP_DigestFinal_ex(ctx, out, &n) != 1)
			r = kq_err(-EIO, "digest failed");
		else
			*ret_len = n;
	}
	EVP_MD_CTX_free(ctx);
	return r;
}
