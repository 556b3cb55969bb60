package rdbvalue

// RDB module value types (src/rdb.h): the payload then starts with the
// module's 64-bit id.
const (
	rdbTypeModulePreGA = 6
	rdbTypeModule2     = 7
)

const moduleCharset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ModuleName returns the name of the module whose type a DUMP payload holds
// (the nine characters that Redis encodes in the module type id, e.g.
// "ReJSON-RL"), or "" when the payload is not of a module type or is too
// short. It makes no other check.
func ModuleName(payload []byte) string {
	if len(payload) < minPayloadLen || (payload[0] != rdbTypeModule2 && payload[0] != rdbTypeModulePreGA) {
		return ""
	}
	d := decoder{p: payload[:len(payload)-footerLen], pos: 1}
	id, enc, err := d.length()
	if err != nil || enc {
		return ""
	}
	id >>= 10 // the low 10 bits are the encoding version
	var name [9]byte
	for i := 8; i >= 0; i-- {
		name[i] = moduleCharset[id&63]
		id >>= 6
	}
	return string(name[:])
}
