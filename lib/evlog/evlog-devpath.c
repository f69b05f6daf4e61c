/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/evlog: EFI device paths (UEFI 2.10 chapter 10) to text, in the style of
 * the spec's "Device Path Text Representation" (what EDK2 and efibootmgr
 * print). Every node is read through a cursor bounded by the node's own
 * length; a node too short for its type's fields is shown generically.
 */
#include <string.h>

#include "evlog/evlog-priv.h"
#include "util/util.h"

#define DP_HW 0x01
#define DP_ACPI 0x02
#define DP_MSG 0x03
#define DP_MEDIA 0x04
#define DP_BBS 0x05
#define DP_END 0x7f

#define DP_MAX_NODES 512u

static void generic(struct strbuf *sb, uint8_t type, uint8_t sub, const uint8_t *p, size_t n)
{
	static const char *const names[] = {
		[DP_HW] = "HardwarePath", [DP_ACPI] = "AcpiPath", [DP_MSG] = "Msg",
		[DP_MEDIA] = "MediaPath", [DP_BBS] = "BbsPath",
	};

	if (type < ARRAY_SIZE(names) && names[type])
		sb_printf(sb, "%s(%u", names[type], sub);
	else
		sb_printf(sb, "Path(%u,%u", type, sub);
	if (n) {
		sb_puts(sb, ",");
		sb_hex(sb, p, n);
	}
	sb_puts(sb, ")");
}

static void vendor(struct strbuf *sb, const char *name, struct kq_cur *c)
{
	const uint8_t *g, *rest;
	size_t n;

	(void)kq_cur_bytes(c, 16, &g);
	n = kq_cur_left(c);
	(void)kq_cur_bytes(c, n, &rest);
	sb_printf(sb, "%s(", name);
	sb_guid(sb, g);
	if (n) {
		sb_puts(sb, ",");
		sb_hex(sb, rest, n);
	}
	sb_puts(sb, ")");
}

static void ipv4(struct strbuf *sb, const uint8_t *a)
{
	sb_printf(sb, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
}

static void ipv6(struct strbuf *sb, const uint8_t *a)
{
	for (int i = 0; i < 16; i += 2)
		sb_printf(sb, "%s%x", i ? ":" : "", (unsigned)(a[i] << 8 | a[i + 1]));
}

static const char *proto_name(uint16_t p)
{
	return p == 6 ? "TCP" : p == 17 ? "UDP" : NULL;
}

/* Decodes one node's payload c; returns false if the payload is too short (caller shows it generically). */
static bool node_text(struct strbuf *sb, uint8_t type, uint8_t sub, struct kq_cur *c, struct strbuf *file)
{
	size_t left = kq_cur_left(c);
	uint8_t u8a, u8b;
	uint16_t u16a, u16b, u16c;
	uint32_t u32a, u32b;
	uint64_t u64a, u64b;
	const uint8_t *p;

	switch (type) {
	case DP_HW:
		switch (sub) {
		case 1: /* PCI: function, device */
			if (left < 2)
				return false;
			(void)kq_cur_u8(c, &u8a);
			(void)kq_cur_u8(c, &u8b);
			sb_printf(sb, "Pci(0x%x,0x%x)", u8b, u8a);
			return true;
		case 2: /* PC card */
			if (left < 1)
				return false;
			(void)kq_cur_u8(c, &u8a);
			sb_printf(sb, "PcCard(0x%x)", u8a);
			return true;
		case 3: /* memory mapped */
			if (left < 20)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			(void)kq_cur_u64le(c, &u64a);
			(void)kq_cur_u64le(c, &u64b);
			sb_printf(sb, "MemoryMapped(0x%x,0x%llx,0x%llx)", u32a,
				  (unsigned long long)u64a, (unsigned long long)u64b);
			return true;
		case 4:
			if (left < 16)
				return false;
			vendor(sb, "VenHw", c);
			return true;
		case 5:
			if (left < 4)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			sb_printf(sb, "Ctrl(0x%x)", u32a);
			return true;
		case 6: /* BMC: interface type, base address */
			if (left < 9)
				return false;
			(void)kq_cur_u8(c, &u8a);
			(void)kq_cur_u64le(c, &u64a);
			sb_printf(sb, "BMC(0x%x,0x%llx)", u8a, (unsigned long long)u64a);
			return true;
		}
		return false;
	case DP_ACPI:
		switch (sub) {
		case 1: /* ACPI: _HID, _UID */
			if (left < 8)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			(void)kq_cur_u32le(c, &u32b);
			if ((u32a & 0xffff) == 0x41d0) { /* compressed EISA id "PNP" */
				uint32_t id = u32a >> 16;

				if (id == 0x0a03)
					sb_printf(sb, "PciRoot(0x%x)", u32b);
				else if (id == 0x0a08)
					sb_printf(sb, "PcieRoot(0x%x)", u32b);
				else if (id == 0x0604)
					sb_printf(sb, "Floppy(0x%x)", u32b);
				else
					sb_printf(sb, "Acpi(PNP%04X,0x%x)", id, u32b);
			} else {
				sb_printf(sb, "Acpi(0x%08x,0x%x)", u32a, u32b);
			}
			return true;
		case 2: { /* expanded ACPI: _HID, _UID, _CID, then three strings */
			uint32_t hid, uid, cid;

			if (left < 12)
				return false;
			(void)kq_cur_u32le(c, &hid);
			(void)kq_cur_u32le(c, &uid);
			(void)kq_cur_u32le(c, &cid);
			sb_printf(sb, "AcpiEx(0x%08x,0x%08x,0x%x", hid, cid, uid);
			/* the optional _HIDSTR, _UIDSTR, _CIDSTR (NUL-terminated ASCII) */
			for (int i = 0; i < 3 && kq_cur_left(c) > 0; i++) {
				size_t n = strnlen((const char *)c->buf + c->off, kq_cur_left(c));

				(void)kq_cur_bytes(c, n, &p);
				sb_puts(sb, ",");
				sb_utf8(sb, p, n);
				(void)kq_cur_skip(c, kq_cur_left(c) > 0 ? 1 : 0);
			}
			sb_puts(sb, ")");
			return true;
		}
		case 3: /* _ADR, possibly several */
			if (left < 4)
				return false;
			sb_puts(sb, "AcpiAdr(");
			for (int i = 0; kq_cur_left(c) >= 4; i++) {
				(void)kq_cur_u32le(c, &u32a);
				sb_printf(sb, "%s0x%x", i ? "," : "", u32a);
			}
			sb_puts(sb, ")");
			return true;
		}
		return false;
	case DP_MSG:
		switch (sub) {
		case 1: /* ATAPI */
			if (left < 4)
				return false;
			(void)kq_cur_u8(c, &u8a);
			(void)kq_cur_u8(c, &u8b);
			(void)kq_cur_u16le(c, &u16a);
			sb_printf(sb, "Ata(%s,%s,0x%x)", u8a ? "Secondary" : "Primary",
				  u8b ? "Slave" : "Master", u16a);
			return true;
		case 2: /* SCSI: target, LUN */
			if (left < 4)
				return false;
			(void)kq_cur_u16le(c, &u16a);
			(void)kq_cur_u16le(c, &u16b);
			sb_printf(sb, "Scsi(0x%x,0x%x)", u16a, u16b);
			return true;
		case 3: /* Fibre Channel: reserved, WWN, LUN */
			if (left < 20)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			(void)kq_cur_u64le(c, &u64a);
			(void)kq_cur_u64le(c, &u64b);
			sb_printf(sb, "Fibre(0x%llx,0x%llx)", (unsigned long long)u64a, (unsigned long long)u64b);
			return true;
		case 5: /* USB: parent port, interface */
			if (left < 2)
				return false;
			(void)kq_cur_u8(c, &u8a);
			(void)kq_cur_u8(c, &u8b);
			sb_printf(sb, "USB(0x%x,0x%x)", u8a, u8b);
			return true;
		case 10:
			if (left < 16)
				return false;
			vendor(sb, "VenMsg", c);
			return true;
		case 11: { /* MAC: 32-byte address, interface type */
			uint8_t iftype;

			if (left < 33)
				return false;
			(void)kq_cur_bytes(c, 32, &p);
			(void)kq_cur_u8(c, &iftype);
			sb_puts(sb, "MAC(");
			sb_hex(sb, p, iftype == 0 || iftype == 1 ? 6 : 32);
			sb_printf(sb, ",0x%x)", iftype);
			return true;
		}
		case 12: { /* IPv4 */
			const uint8_t *local, *remote;

			if (left < 15)
				return false;
			(void)kq_cur_bytes(c, 4, &local);
			(void)kq_cur_bytes(c, 4, &remote);
			(void)kq_cur_u16le(c, &u16a); /* local port */
			(void)kq_cur_u16le(c, &u16b); /* remote port */
			(void)kq_cur_u16le(c, &u16c); /* protocol */
			(void)kq_cur_u8(c, &u8a);     /* static */
			sb_puts(sb, "IPv4(");
			ipv4(sb, remote);
			if (proto_name(u16c))
				sb_printf(sb, ",%s,", proto_name(u16c));
			else
				sb_printf(sb, ",0x%x,", u16c);
			sb_puts(sb, u8a ? "Static," : "DHCP,");
			ipv4(sb, local);
			if (kq_cur_left(c) >= 8) {
				const uint8_t *gw, *mask;

				(void)kq_cur_bytes(c, 4, &gw);
				(void)kq_cur_bytes(c, 4, &mask);
				sb_puts(sb, ",");
				ipv4(sb, gw);
				sb_puts(sb, ",");
				ipv4(sb, mask);
			}
			sb_puts(sb, ")");
			return true;
		}
		case 13: { /* IPv6 */
			const uint8_t *local, *remote;

			if (left < 39)
				return false;
			(void)kq_cur_bytes(c, 16, &local);
			(void)kq_cur_bytes(c, 16, &remote);
			(void)kq_cur_u16le(c, &u16a);
			(void)kq_cur_u16le(c, &u16b);
			(void)kq_cur_u16le(c, &u16c);
			(void)kq_cur_u8(c, &u8a); /* origin: 0 manual, 1 stateless, 2 stateful */
			sb_puts(sb, "IPv6(");
			ipv6(sb, remote);
			if (proto_name(u16c))
				sb_printf(sb, ",%s,", proto_name(u16c));
			else
				sb_printf(sb, ",0x%x,", u16c);
			sb_puts(sb, u8a == 0 ? "Static," : u8a == 1 ? "StatelessAutoConfigure," : "StatefulAutoConfigure,");
			ipv6(sb, local);
			sb_puts(sb, ")");
			return true;
		}
		case 15: /* USB class */
			if (left < 7)
				return false;
			(void)kq_cur_u16le(c, &u16a);
			(void)kq_cur_u16le(c, &u16b);
			(void)kq_cur_u8(c, &u8a);
			(void)kq_cur_u8(c, &u8b);
			{
				uint8_t proto;

				(void)kq_cur_u8(c, &proto);
				sb_printf(sb, "UsbClass(0x%x,0x%x,0x%x,0x%x,0x%x)", u16a, u16b, u8a, u8b, proto);
			}
			return true;
		case 17: /* logical unit */
			if (left < 1)
				return false;
			(void)kq_cur_u8(c, &u8a);
			sb_printf(sb, "Unit(0x%x)", u8a);
			return true;
		case 18: /* SATA: HBA port, port multiplier port, LUN */
			if (left < 6)
				return false;
			(void)kq_cur_u16le(c, &u16a);
			(void)kq_cur_u16le(c, &u16b);
			(void)kq_cur_u16le(c, &u16c);
			sb_printf(sb, "Sata(0x%x,0x%x,0x%x)", u16a, u16b, u16c);
			return true;
		case 20: /* VLAN */
			if (left < 2)
				return false;
			(void)kq_cur_u16le(c, &u16a);
			sb_printf(sb, "Vlan(%u)", u16a);
			return true;
		case 23: /* NVMe namespace: id, EUI-64 */
			if (left < 12)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			(void)kq_cur_bytes(c, 8, &p);
			sb_printf(sb, "NVMe(0x%x,%02X-%02X-%02X-%02X-%02X-%02X-%02X-%02X)", u32a,
				  p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
			return true;
		case 24: /* URI, not NUL-terminated */
			sb_puts(sb, "Uri(");
			(void)kq_cur_bytes(c, left, &p);
			sb_utf8(sb, p, left);
			sb_puts(sb, ")");
			return true;
		case 26: /* SD */
		case 29: /* eMMC */
			if (left < 1)
				return false;
			(void)kq_cur_u8(c, &u8a);
			sb_printf(sb, "%s(0x%x)", sub == 26 ? "SD" : "eMMC", u8a);
			return true;
		}
		return false;
	case DP_MEDIA:
		switch (sub) {
		case 1: { /* hard drive */
			const uint8_t *sig;
			uint8_t format, sigtype;

			if (left < 38)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			(void)kq_cur_u64le(c, &u64a);
			(void)kq_cur_u64le(c, &u64b);
			(void)kq_cur_bytes(c, 16, &sig);
			(void)kq_cur_u8(c, &format);
			(void)kq_cur_u8(c, &sigtype);
			sb_printf(sb, "HD(%u,", u32a);
			if (sigtype == 2) {
				sb_puts(sb, "GPT,");
				sb_guid(sb, sig);
			} else if (sigtype == 1) {
				sb_printf(sb, "MBR,0x%08x", (unsigned)sig[0] | (unsigned)sig[1] << 8 |
							     (unsigned)sig[2] << 16 | (unsigned)sig[3] << 24);
			} else {
				sb_printf(sb, "%u,", sigtype);
				sb_hex(sb, sig, 16);
			}
			sb_printf(sb, ",0x%llx,0x%llx)", (unsigned long long)u64a, (unsigned long long)u64b);
			return true;
		}
		case 2: /* CD-ROM: boot entry, start, size */
			if (left < 20)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			(void)kq_cur_u64le(c, &u64a);
			(void)kq_cur_u64le(c, &u64b);
			sb_printf(sb, "CDROM(0x%x,0x%llx,0x%llx)", u32a, (unsigned long long)u64a,
				  (unsigned long long)u64b);
			return true;
		case 3:
			if (left < 16)
				return false;
			vendor(sb, "VenMedia", c);
			return true;
		case 4: { /* file path: UTF-16, NUL-terminated */
			size_t mark = sb->len;

			(void)kq_cur_bytes(c, left, &p);
			sb_utf16(sb, p, left / 2);
			if (file && !sb->err && sb->len > mark) {
				/* join nodes the way firmware splits them: "\EFI" + "\BOOT" */
				if (file->len && file->s[file->len - 1] != '\\' && sb->s[mark] != '\\')
					sb_puts(file, "\\");
				sb_add(file, sb->s + mark, sb->len - mark);
			}
			return true;
		}
		case 5:
			if (left < 16)
				return false;
			(void)kq_cur_bytes(c, 16, &p);
			sb_puts(sb, "Media(");
			sb_guid(sb, p);
			sb_puts(sb, ")");
			return true;
		case 6: /* PIWG firmware file */
		case 7: /* PIWG firmware volume */
			if (left < 16)
				return false;
			(void)kq_cur_bytes(c, 16, &p);
			sb_puts(sb, sub == 6 ? "FvFile(" : "Fv(");
			sb_guid(sb, p);
			sb_puts(sb, ")");
			return true;
		case 8: /* relative offset range: reserved, start, end */
			if (left < 20)
				return false;
			(void)kq_cur_u32le(c, &u32a);
			(void)kq_cur_u64le(c, &u64a);
			(void)kq_cur_u64le(c, &u64b);
			sb_printf(sb, "Offset(0x%llx,0x%llx)", (unsigned long long)u64a, (unsigned long long)u64b);
			return true;
		case 9: /* RAM disk: start, end, type GUID, instance */
			if (left < 34)
				return false;
			(void)kq_cur_u64le(c, &u64a);
			(void)kq_cur_u64le(c, &u64b);
			(void)kq_cur_bytes(c, 16, &p);
			(void)kq_cur_u16le(c, &u16a);
			sb_printf(sb, "RamDisk(0x%llx,0x%llx,%u,", (unsigned long long)u64a,
				  (unsigned long long)u64b, u16a);
			sb_guid(sb, p);
			sb_puts(sb, ")");
			return true;
		}
		return false;
	case DP_BBS:
		if (sub == 1) { /* BBS: device type, status flags, ASCII description */
			if (left < 4)
				return false;
			(void)kq_cur_u16le(c, &u16a);
			(void)kq_cur_u16le(c, &u16b);
			(void)kq_cur_bytes(c, kq_cur_left(c), &p);
			sb_printf(sb, "BBS(0x%x,", u16a);
			sb_utf8(sb, p, strnlen((const char *)p, left - 4));
			sb_printf(sb, ",0x%x)", u16b);
			return true;
		}
		return false;
	}
	return false;
}

int devpath_decode(const uint8_t *buf, size_t len, struct strbuf *text, struct strbuf *file)
{
	struct kq_cur c = kq_cur_init(buf, len);
	bool sep = false;
	unsigned nodes = 0;

	while (kq_cur_left(&c) > 0) {
		uint8_t type, sub;
		uint16_t nlen;
		const uint8_t *payload;
		struct kq_cur nc;
		size_t mark;

		if (++nodes > DP_MAX_NODES)
			return kq_err(-E2BIG, "device path has more than %u nodes", DP_MAX_NODES);
		if (kq_cur_u8(&c, &type) < 0 || kq_cur_u8(&c, &sub) < 0 || kq_cur_u16le(&c, &nlen) < 0)
			return kq_err(-EBADMSG, "device path truncated in a node header at offset %zu", c.off);
		if (nlen < 4)
			return kq_err(-EBADMSG, "device path node at offset %zu has length %u (< 4)",
				      c.off - 4, nlen);
		if (kq_cur_bytes(&c, nlen - 4u, &payload) < 0)
			return kq_err(-EBADMSG, "device path node at offset %zu (length %u) overruns the path",
				      c.off - 4, nlen);
		if (type == DP_END) {
			if (sub == 0xff)
				break;                 /* end of the entire path */
			if (sub == 0x01) {             /* end of this instance */
				sb_puts(text, ",");
				sep = false;
				continue;
			}
		}
		if (sep)
			sb_puts(text, "/");
		sep = true;
		nc = kq_cur_init(payload, nlen - 4u);
		mark = text->len;
		if (!node_text(text, type, sub, &nc, file) && !text->err) {
			text->len = mark;
			if (text->s)
				text->s[mark] = '\0';
			generic(text, type, sub, payload, nlen - 4u);
		}
		if (text->err)
			break;
	}
	if (text->err || (file && file->err)) {
		int r = text->err ? text->err : file->err;

		return r == -ENOMEM ? kq_err(r, "out of memory")
				    : kq_err(r, "device path text longer than %u bytes", EVLOG_MAX_TEXT);
	}
	return 0;
}

int evlog_devpath_to_text(const uint8_t *buf, size_t len, char **ret_text, char **ret_file)
{
	struct strbuf text = { 0 }, file = { 0 };
	int r;

	r = devpath_decode(buf, len, &text, ret_file ? &file : NULL);
	if (r < 0)
		goto out;
	sb_add(&text, "", 0); /* make sure there is a string, even for an empty path */
	if (text.err) {
		r = kq_err(text.err, "out of memory");
		goto out;
	}
	*ret_text = TAKE_PTR(text.s);
	if (ret_file)
		*ret_file = file.len ? TAKE_PTR(file.s) : NULL;
out:
	sb_done(&text);
	sb_done(&file);
	return r;
}
