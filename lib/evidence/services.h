/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What both agents serve besides their evidence: secure payloads
 * (lib/payload, docs/payloads.md) and revocation notices (lib/revocation,
 * docs/revocation.md), configured alike in both:
 *
 *   [payload]    dir (default /run/kumquat/payload, on tmpfs), script
 *   [revocation] verifier_key (PEM; unset: no notices taken), actions_dir, max_age
 *
 * The routes' userdata is the agent's struct evidence_config, or a struct
 * whose first member it is.
 */
#ifndef KQ_EVIDENCE_SERVICES_H
#define KQ_EVIDENCE_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "evidence/evidence.h"
#include "payload/payload-agent.h"
#include "revocation/revocation.h"

#define SERVICES_PAYLOAD_DIR_DEFAULT "/run/kumquat/payload"

struct services_config {
	char *payload_dir, *payload_script;
	char *revocation_key, *revocation_actions;
	uint64_t revocation_max_age;
};

/* conf_option entries for a services_config member m of struct type t. */
#define SERVICES_OPTIONS(t, m)                                                                             \
	{ "payload", "dir", CONF_PATH, offsetof(t, m.payload_dir), 0 },                                    \
	{ "payload", "script", CONF_PATH, offsetof(t, m.payload_script), 0 },                              \
	{ "revocation", "verifier_key", CONF_PATH, offsetof(t, m.revocation_key), 0 },                     \
	{ "revocation", "actions_dir", CONF_PATH, offsetof(t, m.revocation_actions), 0 },                  \
	{ "revocation", "max_age", CONF_UINT, offsetof(t, m.revocation_max_age), 30 * 86400 }

/* The routes, for an agent's route table. */
#define SERVICES_ROUTES                                        \
	{ "POST", "/v1/payload/u", true, payload_handle_u },   \
	{ "POST", "/v1/payload/v", true, payload_handle_v },   \
	{ "POST", "/v1/revocation", true, revocation_handle }

/* Largest request body the routes take (an agent's server limit is at least this). */
#define SERVICES_MAX_BODY PAYLOAD_AGENT_MAX_BODY

struct services {
	struct payload_agent payload;
	struct revocation_agent revocation;
};

/*
 * Fills s from c and points ev's payload and revocation members at it
 * (revocation only with a verifier key). The strings stay c's. -errno with
 * the reason if the verifier key does not load.
 */
int services_setup(const struct services_config *c, const char *agent_id, TPM2_HANDLE payload_key,
		   const char *state_dir, struct services *s, struct evidence_config *ev);
void services_clear(struct services *s);

#endif
