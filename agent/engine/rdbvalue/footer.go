package rdbvalue

import "encoding/binary"

// The DUMP payload footer: the RDB version (uint16 LE) and the CRC-64 of
// everything before the CRC (uint64 LE), serialized value and version.
const (
	footerLen     = 10
	minPayloadLen = 1 + footerLen // a type byte at least
)

// PayloadRDBVersion returns the RDB version recorded in a DUMP payload's
// footer (no other check is made), or -1 when the payload is too short.
func PayloadRDBVersion(payload []byte) int {
	if len(payload) < minPayloadLen {
		return -1
	}
	return int(binary.LittleEndian.Uint16(payload[len(payload)-footerLen:]))
}

// AppendDumpFooter turns a serialized value (an RDB type byte and the
// value, as RDB files store it) into a DUMP payload that RESTORE accepts:
// it appends the footer to payload in place (as append does). A server
// accepts the payload when rdbVersion is at most its own RDB version.
func AppendDumpFooter(payload []byte, rdbVersion int) []byte {
	return appendFooter(payload, 0, rdbVersion)
}

// appendFooter appends the footer of the serialized value dst[start:].
func appendFooter(dst []byte, start, rdbVersion int) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(rdbVersion))
	return binary.LittleEndian.AppendUint64(dst, CRC64(0, dst[start:]))
}

// AppendFooterCRC appends to dst the footer of a serialized value whose
// CRC-64 is crc (CRC64 of the value, which need not be in dst: a caller
// streaming the value elsewhere computes it piece by piece).
func AppendFooterCRC(dst []byte, crc uint64, rdbVersion int) []byte {
	var v [2]byte
	binary.LittleEndian.PutUint16(v[:], uint16(rdbVersion))
	dst = append(dst, v[:]...)
	return binary.LittleEndian.AppendUint64(dst, CRC64(crc, v[:]))
}

// payloadCRCOK reports whether the CRC in a payload's footer (at least
// minPayloadLen bytes long) matches its content.
func payloadCRCOK(payload []byte) bool {
	body := payload[:len(payload)-8]
	return CRC64(0, body) == binary.LittleEndian.Uint64(payload[len(payload)-8:])
}
