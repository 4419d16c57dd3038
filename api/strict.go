package api

import (
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// UnsupportedFields lists, by path ("HostConfig.CpusetCpus"), the members
// of the JSON object data that v's type does not declare and whose value
// is set. json.Unmarshal drops such members without a word; the daemon
// refuses a request that has any (400 naming them) rather than run a
// container without something its caller asked for.
//
// "Set" means anything but an empty value: null, false, 0, "", and arrays
// and objects made only of empty values. The docker CLI sends every field
// it knows, most of them empty ("CpusetCpus":"", "BlkioWeightDevice":[],
// "LogConfig":{"Type":"","Config":{}}), and those mean "not set": they
// pass. So do the few fields whose "not set" is another value
// (unsetValues). Members are matched to fields as encoding/json does: by
// the json tag or the field name, an exact match first, then without
// regard to case. The walk goes into struct fields, and into the elements
// of slices and maps of structs.
func UnsupportedFields(data []byte, v any) []string {
	var out []string
	walkFields(reflect.TypeOf(v), data, "", &out)
	sort.Strings(out)
	return out
}

// unsetValues are Docker fields whose "not set" is not their zero value:
// the docker CLI sends "MemorySwappiness": -1 unless --memory-swappiness
// is given.
var unsetValues = map[string]string{"MemorySwappiness": "-1"}

func walkFields(t reflect.Type, data []byte, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil {
			return // not an object: the decoder reports the type error
		}
		fields := jsonFields(t)
		for name, raw := range members {
			f, ok := matchField(fields, name)
			if !ok {
				if !isEmptyJSON(raw) && unsetValues[name] != strings.TrimSpace(string(raw)) {
					*out = append(*out, path+name)
				}
				continue
			}
			walkFields(f.Type, raw, path+name+".", out)
		}
	case reflect.Slice, reflect.Array:
		if !hasStruct(t.Elem()) {
			return
		}
		var elems []json.RawMessage
		if json.Unmarshal(data, &elems) != nil {
			return
		}
		p := strings.TrimSuffix(path, ".")
		for i, e := range elems {
			walkFields(t.Elem(), e, p+"["+strconv.Itoa(i)+"].", out)
		}
	case reflect.Map:
		if !hasStruct(t.Elem()) {
			return
		}
		var elems map[string]json.RawMessage
		if json.Unmarshal(data, &elems) != nil {
			return
		}
		for k, e := range elems {
			walkFields(t.Elem(), e, path+k+".", out)
		}
	}
}

func hasStruct(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// jsonFields are the fields encoding/json decodes into a struct of type
// t, by their JSON names, those of embedded structs included.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for n, ef := range jsonFields(et) {
					if _, shadowed := out[n]; !shadowed {
						out[n] = ef
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func matchField(fields map[string]reflect.StructField, name string) (reflect.StructField, bool) {
	if f, ok := fields[name]; ok {
		return f, true
	}
	for n, f := range fields {
		if strings.EqualFold(n, name) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// isEmptyJSON tells whether raw is null, false, 0, "", or an array or
// object of such values only.
func isEmptyJSON(raw []byte) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	return isEmptyValue(v)
}

func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		for _, e := range x {
			if !isEmptyValue(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !isEmptyValue(e) {
				return false
			}
		}
		return true
	}
	return false
}
