/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat-vtpm-mgr list and enable. */
#include "vtpm-mgr.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static void quiet(void *ud, virErrorPtr e)
{
	(void)ud;
	(void)e;
}

/* ---- list ---- */

static const char list_usage[] =
	"usage: " VTPM_MGR " [--config FILE] list [--json]\n"
	"Prints the VM map: UUID, state, whether the host agent has it, name, vTPM state location.\n";

int vtpm_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vtpm_config cfg = {};
	struct vm_map *map = NULL;
	struct vm_row *rows = NULL;
	size_t n = 0;
	bool json = false;
	int c, rc = VTPM_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(list_usage, stdout); return VTPM_EXIT_OK;
		default: return vtpm_fail(VTPM_EXIT_USAGE, "list: bad option (see list --help)");
		}
	}
	if (optind != argc)
		return vtpm_fail(VTPM_EXIT_USAGE, "list takes no arguments");
	if (vtpm_config_load(vtpm_config_path, &cfg) < 0)
		return vtpm_fail(VTPM_EXIT_FAIL, "config: %s", kq_errmsg());
	if (vm_map_open(cfg.database, &map) < 0 || vm_map_list(map, false, &rows, &n) < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "map %s: %s", cfg.database, kq_errmsg());
		goto out;
	}
	if (json) {
		struct json_object *o = json_object_new_object(), *a = json_object_new_array();

		if (!o || !a || json_object_object_add(o, "vms", a) < 0) {
			json_object_put(o);
			json_object_put(a);
			vtpm_fail(VTPM_EXIT_FAIL, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, vm_row_to_json(&rows[i]));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		/* names and paths were checked free of control characters when recorded */
		printf("%-36s  %-12s  %-8s  %-20s  %s\n", "UUID", "STATE", "REPORTED", "NAME", "VTPM STATE");
		for (size_t i = 0; i < n; i++)
			printf("%-36s  %-12s  %-8s  %-20s  %s\n", rows[i].uuid, vm_state_name(rows[i].state),
			       rows[i].reported ? "yes" : "no", rows[i].name, rows[i].vtpm_dir ? rows[i].vtpm_dir : "-");
	}
	rc = fflush(stdout) == 0 ? VTPM_EXIT_OK : VTPM_EXIT_FAIL;
out:
	vm_rows_free(rows, n);
	vm_map_close(map);
	vtpm_config_free(&cfg);
	return rc;
}

/* ---- enable ---- */

static const char enable_usage[] =
	"usage: " VTPM_MGR " [--config FILE] enable VM [--output FILE]\n"
	"       " VTPM_MGR " enable --xml FILE [--output FILE]\n"
	"Adds a TPM 2.0 emulator (<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>)\n"
	"to a domain that has no TPM. VM (a name or UUID) is read from libvirt ([libvirt] uri) and\n"
	"redefined there; a running domain gets the TPM at its next start.\n"
	"  --xml FILE      work on a domain XML file instead of libvirt\n"
	"  --output FILE   write the resulting XML to FILE instead of redefining the domain\n"
	"                  (with --xml and no --output it goes to stdout)\n"
	"A domain that has a TPM already is left as it is (exit 0).\n";

static int write_out(const char *path, const char *data, size_t len)
{
	if (!path) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
			return vtpm_fail(VTPM_EXIT_FAIL, "cannot write the XML to stdout");
		return VTPM_EXIT_OK;
	}
	/* 0600: XML from libvirt is asked for with its secrets (VNC passwords, ...) */
	if (kq_write_file(path, data, len) < 0)
		return vtpm_fail(VTPM_EXIT_FAIL, "%s: %s", path, kq_errmsg());
	return VTPM_EXIT_OK;
}

int vtpm_enable(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "xml", required_argument, NULL, 'x' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vtpm_config cfg = {};
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	const char *xml_path = NULL, *out_path = NULL, *vm = NULL;
	_cleanup_free_ char *xml = NULL, *result = NULL;
	size_t len = 0, result_len = 0;
	char uuid[37];
	int c, r, rc = VTPM_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'x': xml_path = optarg; break;
		case 'o': out_path = optarg; break;
		case 'h': fputs(enable_usage, stdout); return VTPM_EXIT_OK;
		default: return vtpm_fail(VTPM_EXIT_USAGE, "enable: bad option (see enable --help)");
		}
	}
	if (optind < argc)
		vm = argv[optind++];
	if (optind != argc || !vm == !xml_path)
		return vtpm_fail(VTPM_EXIT_USAGE, "enable needs either a VM or --xml FILE (see enable --help)");

	if (xml_path) {
		uint8_t *buf = NULL;

		if (kq_read_file(xml_path, DOMXML_MAX, &buf, &len) < 0)
			return vtpm_fail(VTPM_EXIT_USAGE, "%s", kq_errmsg());
		xml = (char *)buf;
	} else {
		if (vtpm_config_load(vtpm_config_path, &cfg) < 0)
			return vtpm_fail(VTPM_EXIT_FAIL, "config: %s", kq_errmsg());
		virSetErrorFunc(NULL, quiet);
		conn = virConnectOpen(cfg.uri);
		if (!conn) {
			vtpm_fail(VTPM_EXIT_FAIL, "cannot connect to %s: %s", cfg.uri, virGetLastErrorMessage());
			goto out;
		}
		dom = kq_uuid_normalize(vm, uuid) ? virDomainLookupByUUIDString(conn, uuid)
						  : virDomainLookupByName(conn, vm);
		if (!dom) {
			vtpm_fail(VTPM_EXIT_FAIL, "no domain '%s' in %s", vm, cfg.uri);
			goto out;
		}
		/* the inactive definition, secrets included, is what gets redefined */
		xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
		if (!xml) {
			vtpm_fail(VTPM_EXIT_FAIL, "domain '%s': %s", vm, virGetLastErrorMessage());
			goto out;
		}
		len = strlen(xml);
	}
	r = domxml_add_tpm(xml, len, &result, &result_len);
	if (r < 0) {
		rc = vtpm_fail(xml_path ? VTPM_EXIT_USAGE : VTPM_EXIT_FAIL, "%s", kq_errmsg());
		goto out;
	}
	if (r == 0) {
		fprintf(stderr, VTPM_MGR ": the domain has a TPM already; unchanged\n");
		/* the unchanged document, so a pipeline has its output either way */
		rc = xml_path || out_path ? write_out(out_path, xml, len) : VTPM_EXIT_OK;
		goto out;
	}
	if (xml_path || out_path) {
		rc = write_out(out_path, result, result_len);
		goto out;
	}
	{
		virDomainPtr nd = virDomainDefineXML(conn, result);

		if (!nd) {
			vtpm_fail(VTPM_EXIT_FAIL, "redefining '%s': %s", vm, virGetLastErrorMessage());
			goto out;
		}
		printf("added a TPM 2.0 emulator to %s%s\n", virDomainGetName(nd),
		       virDomainIsActive(nd) == 1 ? " (from its next start)" : "");
		virDomainFree(nd);
	}
	rc = VTPM_EXIT_OK;
out:
	if (dom)
		virDomainFree(dom);
	if (conn)
		virConnectClose(conn);
	vtpm_config_free(&cfg);
	return rc;
}
