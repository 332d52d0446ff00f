package gpu

import (
	"encoding/binary"
	"testing"

	"github.com/rwkv-gpu/rwkv-gpu/shaders"
)

// TestCommonHelpers runs every helper of shaders/common.wgsl on the device
// and checks it against values computed here.
func TestCommonHelpers(t *testing.T) {
	d := openTestDevice(t)
	common, err := shaders.Source(shaders.Common, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := "const WG: u32 = 64u;\n" + common + `
@group(0) @binding(0) var<storage, read> words: array<u32>;
@group(0) @binding(1) var<storage, read_write> outf: array<f32>;
@group(0) @binding(2) var<storage, read_write> outu: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    let s = wg_reduce_sum(lid, f32(lid));
    let m = wg_reduce_max(lid, f32((lid * 37u) % 64u));
    let s2 = wg_reduce_sum(lid, 1.0);
    if (lid == 0u) {
        let w = words[0];
        outf[0] = f16_lo(w);
        outf[1] = f16_hi(w);
        outf[2] = f16_pick(w, 2u);
        outf[3] = f16_pick(w, 3u);
        outf[4] = f16_bits(words[1]);
        let v = f16x4(words[0], words[1]);
        outf[5] = v.x;
        outf[6] = v.y;
        outf[7] = v.z;
        outf[8] = v.w;
        outf[9] = bf16_lo(words[2]);
        outf[10] = bf16_hi(words[2]);
        outf[11] = s;
        outf[12] = m;
        outf[13] = s2;
        for (var i = 0u; i < 4u; i++) {
            outu[i] = byte_at(words[3], i);
            outu[4u + i] = bitcast<u32>(sbyte_at(words[3], i));
        }
        for (var i = 0u; i < 8u; i++) {
            outu[8u + i] = nibble_at(words[4], i);
        }
        for (var off = 0u; off < 8u; off++) {
            outu[16u + off] = u16_at_byte(words[3u + off / 4u], words[4u + off / 4u], off);
        }
        outu[24u] = flat_index(vec3<u32>(5u, 2u, 0u), vec3<u32>(3u, 4u, 1u));
    }
}
`
	k, err := d.Kernel("common-helpers", src, "main")
	if err != nil {
		t.Fatal(err)
	}
	words := []uint32{
		0x3E00 | 0xC080<<16, // f16 1.5, -2.25
		0x7BFF | 0x3800<<16, // f16 65504, 0.5
		0x4049 | 0xBFC0<<16, // bf16 3.140625, -1.5
		0x80FF7F01,
		0x76543210,
		0xCAFEBABE,
	}
	in, _ := d.NewBufferU32("words", words)
	outf, _ := d.NewBuffer("outf", 4*14)
	outu, _ := d.NewBuffer("outu", 4*25)
	r := d.NewRecorder()
	r.Dispatch(k, []Binding{{Buf: in}, {Buf: outf}, {Buf: outu}}, 1, 1, 1)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	gf, err := d.ReadF32(outf, 0, 14)
	if err != nil {
		t.Fatal(err)
	}
	wantF := []float32{1.5, -2.25, 1.5, -2.25, 65504, 1.5, -2.25, 65504, 0.5, 3.140625, -1.5, 2016, 63, 64}
	for i := range wantF {
		if gf[i] != wantF[i] {
			t.Errorf("outf[%d] = %v, want %v", i, gf[i], wantF[i])
		}
	}
	gu, err := d.ReadU32(outu, 0, 25)
	if err != nil {
		t.Fatal(err)
	}
	raw := U32Bytes(words)
	var wantU []uint32
	for i := 0; i < 4; i++ {
		wantU = append(wantU, uint32(raw[12+i]))
	}
	for i := 0; i < 4; i++ {
		wantU = append(wantU, uint32(int32(int8(raw[12+i]))))
	}
	for i := 0; i < 8; i++ {
		wantU = append(wantU, words[4]>>(4*i)&0xf)
	}
	for off := 0; off < 8; off++ {
		wantU = append(wantU, uint32(binary.LittleEndian.Uint16(raw[12+off:])))
	}
	wantU = append(wantU, 5+2*3*64)
	for i := range wantU {
		if gu[i] != wantU[i] {
			t.Errorf("outu[%d] = %#x, want %#x", i, gu[i], wantU[i])
		}
	}
}
