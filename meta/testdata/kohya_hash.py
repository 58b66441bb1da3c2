# Independent re-derivation of kohya sd-scripts' precalculate_safetensors_hashes
# (library/train_util.py): keep only ss_* metadata, serialize as safetensors does
# (tensors sorted by dtype alignment desc then name, compact JSON, header padded
# with spaces to a multiple of 8 for safetensors>=0.3.1, unpadded before), then
# sshs_model_hash = sha256(data section), sshs_legacy_hash = sha256(bytes
# [0x100000, 0x110000))[:8].
import json, struct, sys, hashlib
ORDER = ["BOOL","U8","I8","F8_E5M2","F8_E4M3","I16","U16","F16","BF16","I32","U32","F32","F64","I64","U64"]
def rank(dt): return ORDER.index(dt)
for fn in sys.argv[1:]:
    b = open(fn,'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8+n])
    meta = h.pop('__metadata__', {}) or {}
    ss = {k: v for k, v in meta.items() if k.startswith('ss_')}
    data0 = 8+n
    names = sorted(h, key=lambda k: (-rank(h[k]['dtype']), k))
    parts = []; hdr = {}
    off = 0
    for k in names:
        t = h[k]; s, e = t['data_offsets']
        parts.append(b[data0+s:data0+e])
        hdr[k] = (t['dtype'], t['shape'], off, off+e-s); off += e-s
    data = b''.join(parts)
    js = '{"__metadata__":' + json.dumps(dict(sorted(ss.items())), separators=(',',':'), ensure_ascii=False)
    for k in names:
        dt, sh, a, z = hdr[k]
        js += ',' + json.dumps(k, ensure_ascii=False) + ':{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}' % (dt, ','.join(map(str, sh)), a, z)
    js += '}'
    out = {}
    for rule in ('padded', 'unpadded'):
        j = js.encode()
        if rule == 'padded':
            j += b' ' * ((8 - len(j) % 8) % 8)
        full = struct.pack('<Q', len(j)) + j + data
        out[rule] = hashlib.sha256(full[0x100000:0x110000]).hexdigest()[:8]
    print(json.dumps({"file": fn.split('/')[-1], "sshs_model_hash": hashlib.sha256(data).hexdigest(),
        "legacy_padded": out['padded'], "legacy_unpadded": out['unpadded'],
        "stored_model": meta.get('sshs_model_hash'), "stored_legacy": meta.get('sshs_legacy_hash'),
        "file_data_sha256": hashlib.sha256(b[data0:]).hexdigest(),
        "ss_header_len": len(js.encode())}))
