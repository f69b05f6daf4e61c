/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt domain XML, read as untrusted input: the hook gets it on stdin and
 * `enable --xml` from a file. libxml2 parses it with the network off, without
 * entity substitution, and with three SAX handlers of ours in front of its
 * own: a DOCTYPE or an entity declaration stops the parser (libvirt never
 * writes one, and a DTD is where entity-expansion bombs and external fetches
 * live), and an element counter stops it past DOMXML_MAX_ELEMENTS (a 4 MiB
 * document of empty elements would otherwise become a million tree nodes).
 */
#include "vtpm-mgr.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#define DOMXML_SWTPM_DIR "/var/lib/libvirt/swtpm"

struct guard {
	unsigned elements;
	char why[96];
};

static void stop(xmlParserCtxtPtr c, const char *why)
{
	struct guard *g = c->_private;

	if (!g->why[0])
		snprintf(g->why, sizeof(g->why), "%s", why);
	xmlStopParser(c);
}

static void refuse_subset(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id)
{
	(void)name;
	(void)ext_id;
	(void)sys_id;
	stop(ctx, "a DOCTYPE is not allowed in a domain XML");
}

static void refuse_entity(void *ctx, const xmlChar *name, int type, const xmlChar *pub_id, const xmlChar *sys_id,
			  xmlChar *content)
{
	(void)name;
	(void)type;
	(void)pub_id;
	(void)sys_id;
	(void)content;
	stop(ctx, "an entity declaration is not allowed in a domain XML");
}

static void count_element(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
			  int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
			  const xmlChar **attributes)
{
	xmlParserCtxtPtr c = ctx;
	struct guard *g = c->_private;

	if (++g->elements > DOMXML_MAX_ELEMENTS) {
		char why[64];

		snprintf(why, sizeof(why), "more than %u elements", DOMXML_MAX_ELEMENTS);
		stop(c, why);
		return;
	}
	xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes, nb_defaulted,
			      attributes);
}

static inline void xmlFreeDocp(xmlDocPtr *d)
{
	if (*d)
		xmlFreeDoc(*d);
}

static inline void xmlFreep(xmlChar **p)
{
	if (*p)
		xmlFree(*p);
}

/* Parses xml into *ret; blanks drops the indentation (for re-indenting on output). */
static int parse(const char *xml, size_t len, bool blanks, xmlDocPtr *ret)
{
	struct guard g = {};
	xmlParserCtxtPtr c;
	xmlDocPtr doc;
	int r = 0;

	if (len > DOMXML_MAX)
		return kq_err(-EFBIG, "the domain XML is over %u bytes", DOMXML_MAX);
	if (!xml || len == 0)
		return kq_err(-EBADMSG, "the domain XML is empty");
	c = xmlNewParserCtxt();
	if (!c || !c->sax) {
		xmlFreeParserCtxt(c);
		return kq_err(-ENOMEM, "out of memory");
	}
	c->_private = &g;
	c->sax->internalSubset = refuse_subset;
	c->sax->externalSubset = refuse_subset;
	c->sax->entityDecl = refuse_entity;
	c->sax->startElementNs = count_element;
	/* no XML_PARSE_NOENT (substitution), DTDLOAD, XINCLUDE or HUGE */
	doc = xmlCtxtReadMemory(c, xml, (int)len, "domain.xml", NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
					(blanks ? XML_PARSE_NOBLANKS : 0));
	if (!doc || g.why[0] || !c->wellFormed) {
		const xmlError *e = xmlCtxtGetLastError(c);

		if (g.why[0])
			r = kq_err(-EBADMSG, "the domain XML is refused: %s", g.why);
		else if (e && e->message)
			r = kq_err(-EBADMSG, "the domain XML is not well-formed: line %d: %.*s", e->line,
				   (int)strcspn(e->message, "\n"), e->message);
		else
			r = kq_err(-EBADMSG, "the domain XML is not well-formed");
		if (doc)
			xmlFreeDoc(doc);
	} else {
		*ret = doc;
	}
	xmlFreeParserCtxt(c);
	return r;
}

static bool is_el(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !n->ns && xmlStrEqual(n->name, BAD_CAST name);
}

/* The only child element called name; -EBADMSG if there are several, 0 with *ret NULL if none. */
static int only_child(xmlNodePtr parent, const char *name, xmlNodePtr *ret)
{
	xmlNodePtr found = NULL;

	for (xmlNodePtr n = parent->children; n; n = n->next)
		if (is_el(n, name)) {
			if (found)
				return kq_err(-EBADMSG, "the domain XML has more than one <%s>", name);
			found = n;
		}
	*ret = found;
	return 0;
}

static int root_of(xmlDocPtr doc, xmlNodePtr *ret)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);

	if (!root || !is_el(root, "domain"))
		return kq_err(-EBADMSG, "the XML is not a <domain>");
	*ret = root;
	return 0;
}

/* <os><type arch=...>, NULL if not given. Caller frees with xmlFree. */
static xmlChar *arch_of(xmlNodePtr root)
{
	xmlNodePtr os = NULL, type = NULL;

	if (only_child(root, "os", &os) < 0 || !os || only_child(os, "type", &type) < 0 || !type)
		return NULL;
	return xmlGetNoNsProp(type, BAD_CAST "arch");
}

static bool arch_is(const xmlChar *arch, const char *prefix)
{
	return arch && strncmp((const char *)arch, prefix, strlen(prefix)) == 0;
}

static bool arch_is_x86(const xmlChar *arch)
{
	/* a domain without an arch gets the host's: x86 on the hypervisors we target */
	return !arch || xmlStrEqual(arch, BAD_CAST "x86_64") || xmlStrEqual(arch, BAD_CAST "i686") ||
	       xmlStrEqual(arch, BAD_CAST "i386");
}

/* The emulator's version as libvirt picks it when the XML has none (qemuDomainTPMDefPostParse). */
static const char *default_version(const xmlChar *model, const xmlChar *arch)
{
	bool tis = model ? xmlStrEqual(model, BAD_CAST "tpm-tis") : !arch_is(arch, "ppc64");

	return tis && arch_is_x86(arch) ? "1.2" : "2.0";
}

static int read_tpm(xmlNodePtr tpm, const xmlChar *arch, const char *uuid, const char *swtpm_dir,
		    struct dom_info *d)
{
	_cleanup_(xmlFreep) xmlChar *type = NULL, *version = NULL, *model = NULL, *path = NULL;
	xmlNodePtr backend = NULL, source = NULL;
	int r;

	if ((r = only_child(tpm, "backend", &backend)) < 0)
		return r;
	if (!backend || !(type = xmlGetNoNsProp(backend, BAD_CAST "type")) ||
	    !xmlStrEqual(type, BAD_CAST "emulator"))
		return 0; /* passthrough or external: no vTPM state here */
	version = xmlGetNoNsProp(backend, BAD_CAST "version");
	model = xmlGetNoNsProp(tpm, BAD_CAST "model");
	if (version && !xmlStrEqual(version, BAD_CAST "2.0") && !xmlStrEqual(version, BAD_CAST "1.2"))
		return kq_err(-EBADMSG, "the TPM emulator's version is neither 2.0 nor 1.2");
	snprintf(d->tpm_version, sizeof(d->tpm_version), "%s",
		 version ? (const char *)version : default_version(model, arch));
	/* newer libvirt: <source type='dir'|'file' path='...'/> puts the state elsewhere */
	if ((r = only_child(backend, "source", &source)) < 0)
		return r;
	if (source && (path = xmlGetNoNsProp(source, BAD_CAST "path"))) {
		if (!vm_path_valid((const char *)path))
			return kq_err(-EBADMSG, "the TPM emulator's state path is not an absolute path of at most "
					       "%u bytes without control characters", VM_PATH_MAX);
		d->vtpm_dir = strdup((const char *)path);
	} else {
		if (asprintf(&d->vtpm_dir, "%s/%s/%s", swtpm_dir ? swtpm_dir : DOMXML_SWTPM_DIR, uuid,
			     strcmp(d->tpm_version, "1.2") == 0 ? "tpm1.2" : "tpm2") < 0)
			d->vtpm_dir = NULL;
		else if (!vm_path_valid(d->vtpm_dir))
			return kq_err(-EINVAL, "swtpm_dir '%.200s' is not an absolute path", swtpm_dir);
	}
	return d->vtpm_dir ? 1 : kq_err(-ENOMEM, "out of memory");
}

void dom_info_free(struct dom_info *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->vtpm_dir);
	memset(d, 0, sizeof(*d));
}

static int parse_info(xmlDocPtr doc, const char *swtpm_dir, struct dom_info *d)
{
	_cleanup_(xmlFreep) xmlChar *uuid = NULL, *name = NULL, *arch = NULL;
	xmlNodePtr root = NULL, n_uuid = NULL, n_name = NULL, devices = NULL;
	const char *u;
	size_t ulen;
	char uuid_s[37];
	int r;

	if ((r = root_of(doc, &root)) < 0 || (r = only_child(root, "uuid", &n_uuid)) < 0 ||
	    (r = only_child(root, "name", &n_name)) < 0 || (r = only_child(root, "devices", &devices)) < 0)
		return r;
	if (!n_uuid || !n_name)
		return kq_err(-EBADMSG, "the domain XML has no <uuid> or no <name>");
	uuid = xmlNodeGetContent(n_uuid);
	name = xmlNodeGetContent(n_name);
	if (!uuid || !name)
		return kq_err(-ENOMEM, "out of memory");
	/* libvirt skips blanks around a UUID; so do we, the rest must be one */
	u = (const char *)uuid + strspn((const char *)uuid, " \t\r\n");
	ulen = strcspn(u, " \t\r\n");
	if (ulen != 36 || u[ulen + strspn(u + ulen, " \t\r\n")] != 0)
		return kq_err(-EBADMSG, "the domain's <uuid> is not a UUID");
	memcpy(uuid_s, u, 36);
	uuid_s[36] = 0;
	if (!kq_uuid_normalize(uuid_s, d->uuid))
		return kq_err(-EBADMSG, "the domain's <uuid> is not a UUID");
	if (!vm_name_valid((const char *)name))
		return kq_err(-EBADMSG, "the domain's <name> is empty, over %u bytes, or has a control character "
				       "or '/'", VM_NAME_MAX);
	d->name = strdup((const char *)name);
	if (!d->name)
		return kq_err(-ENOMEM, "out of memory");
	if (!devices)
		return 0;
	arch = arch_of(root);
	for (xmlNodePtr n = devices->children; n; n = n->next) {
		if (!is_el(n, "tpm"))
			continue;
		d->has_tpm = true;
		/* the first emulator holds the state (a second TPM is ppc64's spapr-tpm-proxy) */
		if (!d->vtpm_dir && (r = read_tpm(n, arch, d->uuid, swtpm_dir, d)) < 0)
			return r;
	}
	return 0;
}

int domxml_parse(const char *xml, size_t len, const char *swtpm_dir, struct dom_info *ret)
{
	_cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
	struct dom_info d = {};
	int r;

	if ((r = parse(xml, len, false, &doc)) < 0)
		return r;
	if ((r = parse_info(doc, swtpm_dir, &d)) < 0) {
		dom_info_free(&d);
		return r;
	}
	*ret = d;
	return 0;
}

int domxml_add_tpm(const char *xml, size_t len, char **ret, size_t *ret_len)
{
	_cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
	_cleanup_(xmlFreep) xmlChar *arch = NULL;
	struct dom_info info = {};
	xmlNodePtr root = NULL, devices = NULL, tpm, backend;
	const char *model;
	xmlBufferPtr buf;
	xmlSaveCtxtPtr save;
	int r;

	if ((r = parse(xml, len, true, &doc)) < 0)
		return r;
	/* the same checks as for the hook: a domain we could not follow is not changed */
	r = parse_info(doc, NULL, &info);
	dom_info_free(&info);
	if (r < 0)
		return r;
	if ((r = root_of(doc, &root)) < 0 || (r = only_child(root, "devices", &devices)) < 0)
		return r;
	for (xmlNodePtr n = devices ? devices->children : NULL; n; n = n->next)
		if (is_el(n, "tpm"))
			return 0;
	arch = arch_of(root);
	if (arch_is_x86(arch))
		model = "tpm-crb";
	else if (xmlStrEqual(arch, BAD_CAST "aarch64"))
		model = "tpm-tis"; /* libvirt makes it tpm-tis-device on the virt machine */
	else if (arch_is(arch, "ppc64"))
		model = "tpm-spapr";
	else
		return kq_err(-ENOTSUP, "no TPM 2.0 device model is known for arch '%.32s'",
			      arch ? (const char *)arch : "");
	if ((!devices && !(devices = xmlNewChild(root, NULL, BAD_CAST "devices", NULL))) ||
	    !(tpm = xmlNewChild(devices, NULL, BAD_CAST "tpm", NULL)) ||
	    !xmlNewProp(tpm, BAD_CAST "model", BAD_CAST model) ||
	    !(backend = xmlNewChild(tpm, NULL, BAD_CAST "backend", NULL)) ||
	    !xmlNewProp(backend, BAD_CAST "type", BAD_CAST "emulator") ||
	    !xmlNewProp(backend, BAD_CAST "version", BAD_CAST "2.0"))
		return kq_err(-ENOMEM, "out of memory");
	buf = xmlBufferCreate();
	if (!buf)
		return kq_err(-ENOMEM, "out of memory");
	save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
	if (!save || xmlSaveDoc(save, doc) < 0 || xmlSaveClose(save) < 0 || !xmlBufferContent(buf)) {
		xmlBufferFree(buf);
		return kq_err(-ENOMEM, "cannot write the domain XML");
	}
	*ret_len = (size_t)xmlBufferLength(buf);
	*ret = strndup((const char *)xmlBufferContent(buf), *ret_len);
	xmlBufferFree(buf);
	return *ret ? 1 : kq_err(-ENOMEM, "out of memory");
}
