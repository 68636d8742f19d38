// ASAPNet's pixelwise MLP as one OpenVINO CPU op: the fused form of `asap_mlp_reference`.
//
// The exported plugin-node ONNX (rtgan/export/plugins.py) holds nodes rtgan::AsapPixelMlp
// (labels, params) and rtgan::AsapPixelMlpExtra (labels, params, extra); this library maps them to
// OpenVINO ops whose `evaluate` runs the whole full-resolution stream:
//   labels int32 (B, H, W), params float (B, H/tile, W/tile, P) channels-last,
//   extra float (B, E, H, W) (instance edges, then noise) -> uint8 RGB (B, H, W, 3).
// In the standard-op graph the same stream writes H x W x (inputs + hidden) floats several times
// (one-hot, concat, tile/untile transposes, bias, activation): memory-bound glue that cost more
// than the matmuls. Here one task per tile keeps everything in registers and L1:
// - the position code depends on x alone or y alone, so its first-layer contribution is two
//   small tables per tile (tile x width each) instead of a per-pixel product;
// - the one-hot part of the first layer is a gather of the label's weight row;
// - pixels go 16 at a time (a row segment of the tile), so each weight is a broadcast operand and
//   the 16 lanes are 16 pixels: hidden layers are 8 independent accumulator rows per weight load;
// - tanh, the [-1, 1] -> uint8 scaling and round-half-to-even happen before the only store.
// Built by rtgan/engine/openvino_ext.py against the installed OpenVINO with -march=native: the
// library is compiled on the machine that runs it (and cached per CPU), so the vectors are
// whatever that CPU has (AVX-512, AVX2, SSE), detected by the compiler, never assumed.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <openvino/core/extension.hpp>
#include <openvino/core/op_extension.hpp>
#include <openvino/core/parallel.hpp>
#include <openvino/frontend/onnx/extension/op.hpp>
#include <openvino/op/op.hpp>

#define RTGAN_INLINE static inline __attribute__((always_inline))

namespace rtgan {

// pixels per group = lanes of the widest float vector the target has: the accumulators must fit
// the register file (16 lanes on AVX2 spill and run 9x slower than 8)
#if defined(__AVX512F__)
constexpr int G = 16;
#elif defined(__AVX__)
constexpr int G = 8;
#else
constexpr int G = 4;
#endif
constexpr int OB = 8;       // output channels per accumulator block: 8 independent FMA chains
constexpr int MAX_W = 512;  // widest layer the buffers hold

// GCC/Clang vector extensions: one vfloat holds a group's G pixels, one register
typedef float vfloat __attribute__((vector_size(4 * G), aligned(4)));
typedef int32_t vint __attribute__((vector_size(4 * G), aligned(4)));

struct Plan {
    int num_classes, extra, tile, nfreq;
    std::vector<int> channels;  // [cin, hidden..., 3]
    std::vector<int> offsets;   // each layer's bias offset in a tile's params; its weight follows
    int tpad;                         // the tile rounded up to whole vectors
    std::vector<float> cos_t, sin_t;  // (nfreq, tpad): cos/sin(2 pi (t mod f) / f), f = tile, tile/2, ..., 2
};

RTGAN_INLINE vfloat load(const float* p) {
    vfloat v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

RTGAN_INLINE vfloat splat(float x) { return vfloat{} + x; }

// 1.5 * 2^23: adding and subtracting it rounds a float of magnitude < 2^22 to the nearest
// integer, ties to even, in the default rounding mode (no -ffast-math here, so it stays)
constexpr float ROUND = 12582912.0f;

// tanh(v) = sign(v) (1 - t) / (1 + t) with t = exp(-2|v|) = 2^n e^r, |r| <= ln2 / 2, e^r by its
// Taylor series to r^7 (relative error < 1e-8 there): below one uint8 level by far
RTGAN_INLINE vfloat tanh_lanes(vfloat v) {
    const vint bits = (vint)v;
    vfloat a = (vfloat)(bits & 0x7fffffff);
    a = a < 9.0f ? a : splat(9.0f);  // tanh(9) rounds to 1 in float
    const vfloat x = -2.0f * a;
    const vfloat n = (x * 1.44269504f + ROUND) - ROUND;
    const vfloat r = x - n * 0.693145752f - n * 1.42860677e-06f;  // ln 2 in two parts: r stays exact
    const vfloat e = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    const vfloat t = e * (vfloat)((__builtin_convertvector(n, vint) + 127) << 23);
    const vfloat th = (1.0f - t) / (1.0f + t);
    return (vfloat)((vint)th | (bits & (int32_t)0x80000000));
}

RTGAN_INLINE vfloat leaky(vfloat v) { return v < 0.0f ? v * 0.01f : v; }

// out[o] = bias[o] + sum_i w[i][o] * in[i]: rows of G pixels, w row-major (cin, cout)
RTGAN_INLINE void dense(const vfloat* in, int cin, const float* w, const float* bias, int cout, vfloat* out) {
    int o0 = 0;
    for (; o0 + OB <= cout; o0 += OB) {
        vfloat acc[OB];
        for (int k = 0; k < OB; ++k)
            acc[k] = splat(bias[o0 + k]);
        for (int i = 0; i < cin; ++i) {
            const vfloat x = in[i];
            const float* wi = w + i * cout + o0;
            for (int k = 0; k < OB; ++k)
                acc[k] += wi[k] * x;
        }
        for (int k = 0; k < OB; ++k)
            out[o0 + k] = acc[k];
    }
    for (; o0 < cout; ++o0) {  // the last layer (3 outputs) and widths not a multiple of OB
        vfloat acc = splat(bias[o0]);
        for (int i = 0; i < cin; ++i)
            acc += w[i * cout + o0] * in[i];
        out[o0] = acc;
    }
}

// One tile of one image. `prm` its P parameters; labels/extra/out point at the image's origin.
void run_tile(const Plan& plan, const float* prm, const int32_t* labels, const float* extra, uint8_t* out,
              int64_t H, int64_t W, int hl, int wl) {
    const int T = plan.tile, nc = plan.num_classes, E = plan.extra, L = int(plan.channels.size()) - 1;
    const int c1 = plan.channels[1];
    const float* b0 = prm + plan.offsets[0];
    const float* w0 = b0 + c1;  // (cin, c1)
    thread_local std::vector<vfloat> scratch;
    scratch.resize(size_t(2 * MAX_W));
    thread_local std::vector<float> tables;
    tables.resize(size_t(2 * c1 * T));
    // first-layer position-code tables: cx[o][tx] (x channels), cy[o][ty] (y channels + bias)
    float* cx = tables.data();
    float* cy = cx + c1 * T;
    const int code0 = nc + E;
    for (int o = 0; o < c1; ++o) {
        for (int t0 = 0; t0 < T; t0 += G) {  // G positions t at a time
            const int n = std::min(G, T - t0);
            vfloat sx = splat(0.0f), sy = splat(b0[o]);
            for (int j = 0; j < plan.nfreq; ++j) {
                const vfloat c = load(&plan.cos_t[j * plan.tpad + t0]), s = load(&plan.sin_t[j * plan.tpad + t0]);
                const float* wr = w0 + (code0 + 4 * j) * c1 + o;  // rows: x cos, x sin, y cos, y sin
                sx += c * wr[0] + s * wr[c1];
                sy += c * wr[2 * c1] + s * wr[3 * c1];
            }
            std::memcpy(cx + o * T + t0, &sx, n * sizeof(float));
            std::memcpy(cy + o * T + t0, &sy, n * sizeof(float));
        }
    }
    vfloat* h = scratch.data();
    vfloat* next = h + MAX_W;
    for (int start = 0; start < T * T; start += G) {
        // a group: G consecutive pixels of the tile in row-major order (a row segment when T >= G)
        int ty[G], tx[G], lab[G];
        int64_t off[G];
        bool uniform = true;
        for (int p = 0; p < G; ++p) {
            const int q = start + p;
            ty[p] = q / T;
            tx[p] = q % T;
            off[p] = (int64_t(hl) * T + ty[p]) * W + int64_t(wl) * T + tx[p];
            lab[p] = std::min(std::max(labels[off[p]], 0), nc - 1);  // ids are checked by the engine; stay in bounds
            uniform = uniform && lab[p] == lab[0];
        }
        if (T >= G) {  // one tile row: the code terms are a vector load and a broadcast
            for (int o = 0; o < c1; ++o)
                h[o] = load(cx + o * T + tx[0]) + cy[o * T + ty[0]];
            // the label's weight row, added under a lane mask once per distinct label (a group
            // crosses few label boundaries)
            vint labv;
            for (int p = 0; p < G; ++p)
                labv[p] = lab[p];
            for (int p = 0; p < G; ++p) {
                bool seen = false;
                for (int q = 0; q < p && !seen; ++q)
                    seen = lab[q] == lab[p];
                if (seen)
                    continue;
                const float* row = w0 + lab[p] * c1;
                if (uniform) {
                    for (int o = 0; o < c1; ++o)
                        h[o] += row[o];
                    break;
                }
                const vint mask = labv == lab[p];
                for (int o = 0; o < c1; ++o)
                    h[o] += (vfloat)(mask & (vint)splat(row[o]));
            }
        } else {  // tiles narrower than a group (crop sizes below 256): lane by lane
            for (int o = 0; o < c1; ++o) {
                float lanes[G];
                for (int p = 0; p < G; ++p)
                    lanes[p] = cx[o * T + tx[p]] + cy[o * T + ty[p]] + w0[lab[p] * c1 + o];
                h[o] = load(lanes);
            }
        }
        for (int e = 0; e < E; ++e) {
            const float* ex = extra + e * H * W;
            vfloat v;
            if (T >= G) {
                v = load(ex + off[0]);
            } else {
                float lanes[G];
                for (int p = 0; p < G; ++p)
                    lanes[p] = ex[off[p]];
                v = load(lanes);
            }
            const float* wr = w0 + (nc + e) * c1;
            for (int o = 0; o < c1; ++o)
                h[o] += wr[o] * v;
        }
        for (int l = 1; l < L; ++l) {  // hidden activations: leaky ReLU 0.01, then the next layer
            for (int i = 0; i < plan.channels[l]; ++i)
                h[i] = leaky(h[i]);
            const float* b = prm + plan.offsets[l];
            dense(h, plan.channels[l], b + plan.channels[l + 1], b, plan.channels[l + 1], next);
            std::swap(h, next);
        }
        float rgb[3][G];
        for (int c = 0; c < 3; ++c) {
            vfloat v = (tanh_lanes(h[c]) + 1.0f) * 127.5f;
            v = v < 0.0f ? splat(0.0f) : v;
            v = v > 255.0f ? splat(255.0f) : v;
            v = (v + ROUND) - ROUND;  // round half to even, as torch.round
            std::memcpy(rgb[c], &v, sizeof v);
        }
        for (int p = 0; p < G; ++p)
            for (int c = 0; c < 3; ++c)
                out[off[p] * 3 + c] = static_cast<uint8_t>(rgb[c][p]);
    }
}

class AsapPixelMlpBase : public ov::op::Op {
public:
    AsapPixelMlpBase() = default;
    explicit AsapPixelMlpBase(const ov::OutputVector& args) : Op(args) {}

    void validate_and_infer_types() override {
        const auto& labels = get_input_partial_shape(0);
        NODE_VALIDATION_CHECK(this, get_input_element_type(0) == ov::element::i32, "labels must be int32");
        NODE_VALIDATION_CHECK(this, get_input_element_type(1) == ov::element::f32, "params must be float32");
        NODE_VALIDATION_CHECK(this, channels.size() >= 2 && channels.back() == 3, "channels must end in 3");
        for (auto c : channels)
            NODE_VALIDATION_CHECK(this, c > 0 && c <= MAX_W, "layer widths must be in [1, ", MAX_W, "]");
        NODE_VALIDATION_CHECK(this, tile >= 4 && tile <= 64 && (tile & (tile - 1)) == 0 && (tile * tile) % G == 0,
                              "tile must be a power of two in [4, 64]");
        NODE_VALIDATION_CHECK(this, num_classes >= 1 && num_classes + nfreq() * 4 <= channels[0],
                              "channels[0] must hold the one-hot classes and the position code");
        if (get_input_size() > 2)
            NODE_VALIDATION_CHECK(this, get_input_element_type(2) == ov::element::f32, "extra must be float32");
        ov::PartialShape out = labels.rank().is_static() ? labels : ov::PartialShape::dynamic(3);
        out.push_back(3);
        set_output_type(0, ov::element::u8, out);
    }

    bool visit_attributes(ov::AttributeVisitor& visitor) override {
        visitor.on_attribute("num_classes", num_classes);
        visitor.on_attribute("channels", channels);
        visitor.on_attribute("tile", tile);
        return true;
    }

    bool has_evaluate() const override { return true; }

    bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override {
        const auto& ls = inputs[0].get_shape();
        const auto& ps = inputs[1].get_shape();
        const int64_t B = ls[0], H = ls[1], W = ls[2], HL = ps[1], WL = ps[2], P = ps[3];
        Plan plan = make_plan();
        const int E = plan.extra;
        int64_t want = 0;
        for (size_t l = 0; l + 1 < plan.channels.size(); ++l)
            want += int64_t(plan.channels[l] + 1) * plan.channels[l + 1];
        if (ps[0] != size_t(B) || HL * tile != H || WL * tile != W || P != want)
            OPENVINO_THROW("AsapPixelMlp: params ", ps, " do not fit labels ", ls, " (tile ", tile, ", P ", want, ")");
        if (E > 0 && (inputs.size() < 3 || inputs[2].get_shape() != ov::Shape{size_t(B), size_t(E), size_t(H), size_t(W)}))
            OPENVINO_THROW("AsapPixelMlp: extra must be (", B, ", ", E, ", ", H, ", ", W, ")");
        outputs[0].set_shape({size_t(B), size_t(H), size_t(W), 3});
        const int32_t* labels = inputs[0].data<const int32_t>();
        const float* params = inputs[1].data<const float>();
        const float* extra = E > 0 ? inputs[2].data<const float>() : nullptr;
        uint8_t* out = outputs[0].data<uint8_t>();
        ov::parallel_for(size_t(B * HL * WL), [&](size_t cell) {
            const int64_t b = cell / (HL * WL), hl = (cell / WL) % HL, wl = cell % WL;
            run_tile(plan, params + cell * P, labels + b * H * W, extra ? extra + b * E * H * W : nullptr,
                     out + b * H * W * 3, H, W, int(hl), int(wl));
        });
        return true;
    }

protected:
    int64_t num_classes = 0, tile = 16;
    std::vector<int64_t> channels;

    int nfreq() const { return tile > 1 ? int(std::log2(double(tile)) + 0.5) : 0; }

    Plan make_plan() const {
        Plan plan;
        plan.num_classes = int(num_classes);
        plan.tile = int(tile);
        plan.nfreq = nfreq();
        plan.channels.assign(channels.begin(), channels.end());
        plan.extra = plan.channels[0] - plan.num_classes - 4 * plan.nfreq;
        int off = 0;
        for (size_t l = 0; l + 1 < channels.size(); ++l) {
            plan.offsets.push_back(off);
            off += int((channels[l] + 1) * channels[l + 1]);
        }
        // as cosine_coords: the angle in float, 2 pi (t mod f) / f
        const float two_pi = float(2.0 * M_PI);
        plan.tpad = (plan.tile + G - 1) / G * G;
        plan.cos_t.assign(size_t(plan.nfreq * plan.tpad), 0.0f);
        plan.sin_t.assign(size_t(plan.nfreq * plan.tpad), 0.0f);
        int j = 0;
        for (int f = plan.tile; f > 1; f /= 2, ++j)
            for (int t = 0; t < plan.tile; ++t) {
                const float a = two_pi * float(t % f) / float(f);
                plan.cos_t[j * plan.tpad + t] = std::cos(a);
                plan.sin_t[j * plan.tpad + t] = std::sin(a);
            }
        return plan;
    }
};

// the two node types differ only in their name (and whether `extra` is given): one definition
#define RTGAN_ASAP_OP(Name)                                                                        \
    class Name : public AsapPixelMlpBase {                                                         \
    public:                                                                                        \
        OPENVINO_OP(#Name, "rtgan");                                                               \
        Name() = default;                                                                          \
        explicit Name(const ov::OutputVector& args) : AsapPixelMlpBase(args) {                     \
            constructor_validate_and_infer_types();                                                \
        }                                                                                          \
        std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& args) const override { \
            auto op = std::make_shared<Name>();                                                    \
            op->set_arguments(args);                                                               \
            op->num_classes = num_classes, op->channels = channels, op->tile = tile;               \
            op->validate_and_infer_types();                                                        \
            return op;                                                                             \
        }                                                                                          \
    };

RTGAN_ASAP_OP(AsapPixelMlp)
RTGAN_ASAP_OP(AsapPixelMlpExtra)

// rtgan::LabelConv3x3 (ids, weight[, bias]): a 3x3 convolution, padding 1, stride 1, of the one-hot
// map of `ids` (B, 1, H, W), int32 or int64 -> float (B, O, H, W). The one-hot map is never built:
//   out[b][o][y][x] = bias[o] + sum over the taps inside the image of weight[o][ids(y+dy, x+dx)][dy][dx],
// ids outside [0, K) adding nothing (their one-hot row is zero), as in the graph it replaces
// (one-hot compare, bool -> float, convolution: at 512x512 most of the first stage's time went to
// that K-channel map and its layout conversions). A row segment of G pixels whose 3x3 windows all
// hold one label, away from the border, is one precomputed column sum per output channel.
class LabelConv3x3 : public ov::op::Op {
public:
    OPENVINO_OP("LabelConv3x3", "rtgan");
    LabelConv3x3() = default;
    explicit LabelConv3x3(const ov::OutputVector& args) : Op(args) { constructor_validate_and_infer_types(); }

    void validate_and_infer_types() override {
        const auto t = get_input_element_type(0);
        NODE_VALIDATION_CHECK(this, t == ov::element::i64 || t == ov::element::i32, "ids must be int32 or int64");
        NODE_VALIDATION_CHECK(this, get_input_element_type(1) == ov::element::f32, "weight must be float32");
        const auto& ids = get_input_partial_shape(0);
        const auto& w = get_input_partial_shape(1);
        NODE_VALIDATION_CHECK(this, ids.rank().is_static() && ids.rank().get_length() == 4, "ids must be (B, 1, H, W)");
        NODE_VALIDATION_CHECK(this, w.rank().is_static() && w.rank().get_length() == 4, "weight must be (O, K, 3, 3)");
        set_output_type(0, ov::element::f32, ov::PartialShape{ids[0], w[0], ids[2], ids[3]});
    }

    bool visit_attributes(ov::AttributeVisitor&) override { return true; }
    bool has_evaluate() const override { return true; }

    std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& args) const override {
        return std::make_shared<LabelConv3x3>(args);
    }

    bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override {
        const auto& is = inputs[0].get_shape();
        const auto& ws = inputs[1].get_shape();
        if (is.size() != 4 || is[1] != 1 || ws.size() != 4 || ws[2] != 3 || ws[3] != 3)
            OPENVINO_THROW("LabelConv3x3: ids ", is, " must be (B, 1, H, W) and weight ", ws, " (O, K, 3, 3)");
        const int64_t B = is[0], H = is[2], W = is[3], O = ws[0], K = ws[1];
        if (inputs.size() > 2 && inputs[2].get_size() != size_t(O))
            OPENVINO_THROW("LabelConv3x3: bias must have ", O, " values");
        outputs[0].set_shape({size_t(B), size_t(O), size_t(H), size_t(W)});
        const float* w = inputs[1].data<const float>();
        const float* bias = inputs.size() > 2 ? inputs[2].data<const float>() : nullptr;
        // table[tap][k][o] and, per label, the sum of its 9 taps (+ bias): an interior uniform window
        std::vector<float> table(size_t(9 * K * O)), whole(size_t(K * O));
        for (int64_t o = 0; o < O; ++o)
            for (int64_t k = 0; k < K; ++k) {
                float sum = bias ? bias[o] : 0.0f;
                for (int tap = 0; tap < 9; ++tap) {
                    const float v = w[(o * K + k) * 9 + tap];
                    table[(tap * K + k) * O + o] = v;
                    sum += v;
                }
                whole[k * O + o] = sum;
            }
        // ids as int32 (the one-hot only tells in-range ids apart: any other value is "no label")
        std::vector<int32_t> ids(size_t(B * H * W));
        if (inputs[0].get_element_type() == ov::element::i64) {
            const int64_t* src = inputs[0].data<const int64_t>();
            for (size_t i = 0; i < ids.size(); ++i)
                ids[i] = src[i] >= 0 && src[i] < K ? int32_t(src[i]) : -1;
        } else {
            const int32_t* src = inputs[0].data<const int32_t>();
            for (size_t i = 0; i < ids.size(); ++i)
                ids[i] = src[i] >= 0 && src[i] < K ? src[i] : -1;
        }
        float* out = outputs[0].data<float>();
        ov::parallel_for(size_t(B * H), [&](size_t row) {
            const int64_t b = row / H, y = row % H;
            const int32_t* id = ids.data() + b * H * W;
            float* dst = out + b * O * H * W + y * W;
            std::vector<float> acc(static_cast<size_t>(G * O));
            for (int64_t x0 = 0; x0 < W; x0 += G) {
                const int64_t n = std::min<int64_t>(G, W - x0);
                const int32_t k = id[y * W + x0];
                bool uniform = k >= 0 && y > 0 && y + 1 < H && x0 > 0 && x0 + n < W;
                for (int64_t dy = -1; dy <= 1 && uniform; ++dy)
                    for (int64_t x = x0 - 1; x <= x0 + n && uniform; ++x)
                        uniform = id[(y + dy) * W + x] == k;
                if (uniform) {
                    for (int64_t o = 0; o < O; ++o)
                        std::fill(dst + o * H * W + x0, dst + o * H * W + x0 + n, whole[k * O + o]);
                    continue;
                }
                // mixed windows: per pixel, the rows of its in-image taps summed, G outputs at a time,
                // then written out channel by channel
                for (int64_t x = x0; x < x0 + n; ++x) {
                    const bool inside = y > 0 && y + 1 < H && x > 0 && x + 1 < W;
                    float* a = acc.data() + (x - x0) * O;
                    for (int64_t o = 0; o < O; ++o)
                        a[o] = bias ? bias[o] : 0.0f;
                    for (int dy = -1; dy <= 1; ++dy)
                        for (int dx = -1; dx <= 1; ++dx) {
                            const int64_t yy = y + dy, xx = x + dx;
                            if (!inside && (yy < 0 || yy >= H || xx < 0 || xx >= W))
                                continue;
                            const int32_t kk = id[yy * W + xx];
                            if (kk < 0)
                                continue;
                            const float* t = table.data() + ((dy + 1) * 3 + (dx + 1)) * K * O + kk * O;
                            int64_t o = 0;
                            for (; o + G <= O; o += G) {
                                const vfloat v = load(a + o) + load(t + o);
                                std::memcpy(a + o, &v, sizeof v);
                            }
                            for (; o < O; ++o)
                                a[o] += t[o];
                        }
                }
                for (int64_t o = 0; o < O; ++o)
                    for (int64_t p = 0; p < n; ++p)
                        dst[o * H * W + x0 + p] = acc[p * O + o];
            }
        });
        return true;
    }
};

}  // namespace rtgan

OPENVINO_CREATE_EXTENSIONS(std::vector<ov::Extension::Ptr>({
    std::make_shared<ov::OpExtension<rtgan::AsapPixelMlp>>(),
    std::make_shared<ov::OpExtension<rtgan::AsapPixelMlpExtra>>(),
    std::make_shared<ov::OpExtension<rtgan::LabelConv3x3>>(),
    std::make_shared<ov::frontend::onnx::OpExtension<rtgan::LabelConv3x3>>("LabelConv3x3", "rtgan"),
    std::make_shared<ov::frontend::onnx::OpExtension<rtgan::AsapPixelMlp>>("AsapPixelMlp", "rtgan"),
    std::make_shared<ov::frontend::onnx::OpExtension<rtgan::AsapPixelMlpExtra>>("AsapPixelMlpExtra", "rtgan"),
}));
