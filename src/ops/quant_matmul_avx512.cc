// AVX-512 VNNI kernels for the quantized matmul (math in ops/quant_matmul.h,
// activation layout in ops/quant_kernels.h). Compiled for the portable
// baseline; only these functions carry the AVX-512 target and are called
// when Int8KernelIsa() is kAvx512.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "ops/quant.h"
#include "ops/quant_kernels.h"

#define RG_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")))

// GCC 12 reports its own _mm*_undefined_* helpers as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rg::quant_internal {
namespace {

// The compile-time shape of a format's blocks (ops/quant.h).
template <WeightFormat F>
struct Shape {
  static constexpr bool kQ4 = F == WeightFormat::Q4 || F == WeightFormat::Q4_256;
  static constexpr int kKb = F == WeightFormat::Q8_256 || F == WeightFormat::Q4_256 ? 256 : 32;
  static constexpr int kHeader = kKb == 32 ? 32 : 64;
  static constexpr size_t kBlockBytes = kHeader + size_t(16) * kKb * (kQ4 ? 4 : 8) / 8;
};

// How far ahead in a token's row QuantizeBlock prefetches x.
constexpr int kActPrefetchBytes = 2048;

// The largest token tile of these kernels (a one-tile product, OneTileMaxAvx512).
constexpr int kMaxTile = 16;
// A single-group tile of more than this many tokens keeps its N f32 sums in
// registers across blocks but its int32 sums for a third of the tokens at a
// time (16 + 6 + weights and broadcast: 25 of the 32 registers; with halves,
// 16 + 8, GCC 12 spilled in the q8_256 loop); the block's weight vectors are
// read again from L1 for the later thirds.
constexpr int kSubTileFrom = 12;

// One token's block of n (<= KB) values: its corr and sx slots of a tile
// record, and its KB / 4 code words to words[0, KB / 4) (TransposeWords puts
// them in the record: strided stores straight into it cost more than the
// quantization itself).
template <int KB>
RG_TARGET_AVX512 inline void QuantizeBlock(const float* p, int n, uint8_t* rec, int tn, int t, int32_t* words) {
  constexpr int V = KB / 16;  // vectors of 16 values
  __m512 x[V];
  __m512 nonfinite = _mm512_setzero_ps();  // NaN in a lane that saw a NaN or Inf (x * 0)
  __m512 amax_v = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) {
    // x streams from L2/L3, one row per token of the tile: the hardware
    // prefetcher does not run ahead of these short per-row pieces.
    _mm_prefetch(reinterpret_cast<const char*>(p + 16 * v) + kActPrefetchBytes, _MM_HINT_T0);
    const int left = n - 16 * v;
    const __mmask16 m = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
    x[v] = _mm512_maskz_loadu_ps(m, p + 16 * v);
    nonfinite = _mm512_fmadd_ps(x[v], _mm512_setzero_ps(), nonfinite);
    amax_v = _mm512_max_ps(amax_v, _mm512_abs_ps(x[v]));
  }
  const bool bad = _mm512_cmp_ps_mask(nonfinite, nonfinite, _CMP_UNORD_Q) != 0;
  const float amax = _mm512_reduce_max_ps(amax_v);
  int32_t* corr = reinterpret_cast<int32_t*>(rec) + t;
  float* sx = reinterpret_cast<float*>(rec + 4 * tn) + t;
  if (bad || amax < 1e-30f) {
    *corr = 0;
    *sx = bad ? NAN : 0.f;
    std::memset(words, 0, KB);
    return;
  }
  const __m512 inv = _mm512_set1_ps(127.f / amax);
  __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) {
    const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(x[v], inv));
    sum = _mm512_add_epi32(sum, q);
    _mm_store_si128(reinterpret_cast<__m128i*>(words + 4 * v), _mm512_cvtepi32_epi8(q));
  }
  *corr = -128 * _mm512_reduce_add_epi32(sum);
  *sx = amax / 127.f;
}

// The gather indices of TransposeWords for a tile of tn tokens: entry
// p = j * tn + t of the record's xq[KB / 4][tn] comes from words[t][j].
template <int KB>
void TransposeIndices(int tn, int32_t* idx /* [tn * KB / 4] */) {
  for (int p = 0; p < tn * KB / 4; ++p) idx[p] = (p % tn) * (KB / 4) + p / tn;
}

// words [tn][KB / 4] (L1) -> xq [KB / 4][tn] of a record, in full vector stores.
template <int KB>
RG_TARGET_AVX512 inline void TransposeWords(const int32_t* words, const int32_t* idx, int tn, int32_t* xq) {
  const int total = tn * KB / 4;
  for (int p = 0; p < total; p += 16) {
    const __mmask16 m = total - p >= 16 ? __mmask16(0xffff) : __mmask16((1u << (total - p)) - 1);
    const __m512i iv = _mm512_maskz_loadu_epi32(m, idx + p);
    const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, iv, words, 4);
    _mm512_mask_storeu_epi32(xq + p, m, v);
  }
}

// acc += u8 lanes of w . the s8 quad in every lane of x. Written out so
// GCC 12 keeps each accumulator in one register across a loop it does not
// unroll fully (the 64-step loop of the _256 formats: given the intrinsic it
// copied every accumulator twice per step).
RG_TARGET_AVX512 inline __m512i Dot(__m512i acc, __m512i w, __m512i x) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(w), "v"(x));
  return acc;
}

// Software prefetch of the weight stream (to L2, this far ahead) for tiles of
// at least this many tokens. Measured on Zen 5, one core: for N = 8 it lifts
// a 2560x7680 Q8 product from ~240 to ~345 GOP/s; for small N the hardware
// prefetcher keeps up with DRAM alone and the extra prefetches only cost
// (Q8 at N = 4 streams ~25 GB/s without, ~21 with). Q4 has twice the work
// per weight byte, so it needs the help from a smaller N on.
template <bool Q4>
constexpr int kPrefetchMinN = Q4 ? 4 : 5;
constexpr size_t kPrefetchBytes = 16384;
// Weights already in L2 (every token tile after a group block's first) are
// pulled into L1 this far ahead of their use: per core on Zen 5, +2-5% for
// the q8 formats and +1-6% for the q4 ones at T = 128 (the L1 prefetcher
// does not keep up with two groups' streams).
constexpr int kL1Ahead = 1024;
RG_TARGET_AVX512 inline void PrefetchL1Ahead(const uint8_t* line) {
  _mm_prefetch(reinterpret_cast<const char*>(line) + kL1Ahead, _MM_HINT_T0);
}
// The prefetch of step `step` of `steps` over a group's block at `blk` (one
// per weight line the step reads). Cold (the block comes from DRAM): into
// L2, kPrefetchBytes ahead, spread evenly over the steps; a burst of the
// block's 65 lines at its start (as before) made the one-tile q8_256
// product at T = 8 ~1.6x slower (bench_quant 2 avx512 decode q8_256 8:
// 800 against 511 us for 2560x7680), the misses queueing behind it. Warm
// (in L2): into L1, kL1Ahead ahead.
template <WeightFormat F, bool kWarm, int N>
RG_TARGET_AVX512 inline void PrefetchWeights(const uint8_t* blk, int step, int steps) {
  using S = Shape<F>;
  if constexpr (kWarm) {
    PrefetchL1Ahead(blk + S::kHeader + 64 * step);
  } else if constexpr (N >= kPrefetchMinN<S::kQ4>) {
    _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes + step * S::kBlockBytes / steps, _MM_HINT_T1);
  }
}

// Weights of this many bytes of row groups stay in L2 while all token tiles
// pass over them.
constexpr size_t kGroupBlockBytes = 384u << 10;

// What a Micro call prefetches besides its own loads: with `cold` its weights
// (DRAM to L2, kPrefetchBytes ahead); with `next`, nb * next_step bytes from
// there into L2, next_step per block (a share of the next group block).
struct WeightPrefetch {
  bool cold = false;
  const uint8_t* next = nullptr;
  size_t next_step = 0;
};

// Token tiles up to which the next group block streams into L2 during the
// current one's warm tiles (see Kernel).
constexpr int64_t kStreamNextMaxTiles = 4;

// G row groups (16 rows each, gbytes apart) x N tokens (one tile) over all nb
// blocks. Each token's code quad is broadcast into a register once and serves
// the G groups' weight vectors, so a pair of groups reads the tile's
// activations once. With tile 6 x 2 groups (against 12 x 1 before) the tile's
// records (6 x ~1 KB per 256 columns) stay in L1 next to the weight streams.
// Per core on Zen 5, q8_256 2560x7680 / 7680x2560 x 128 tokens, kernel alone
// (activations quantized beforehand): 635-645 / 602-606 GOP/s -> 747-809 /
// 786-794 with the L1 prefetch below.
template <int G, int N, WeightFormat F, bool kWarm>
RG_TARGET_AVX512 void Micro(const uint8_t* wg, size_t gbytes, int64_t nb, const uint8_t* tile, float* y,
                            int64_t rows, int64_t r0, const __mmask16* rmask, const float* bias,
                            const WeightPrefetch& pf) {
  using S = Shape<F>;
  constexpr size_t kRecBytes = ActRecordBytes(S::kKb) * N;
  // A tile of more tokens than the registers hold int32 sums for runs as
  // three sub-tiles over each block (see kSubTileFrom).
  constexpr int kSub = N > kSubTileFrom ? (N + 2) / 3 : N;
  __m512 f[G][N];  // [group, token] f32 sums of 16 rows
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 16
    for (int t = 0; t < N; ++t) f[g][t] = _mm512_setzero_ps();
  const __m512i x80 = _mm512_set1_epi8(char(0x80)), m0f = _mm512_set1_epi8(0x0f);
  alignas(16) uint8_t lut_bytes[16];
  for (int k = 0; k < 16; ++k) lut_bytes[k] = uint8_t(kQ4Codebook[k] + 128);
  const __m512i lut = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(lut_bytes)));

  const uint8_t* blk = wg;  // group g's block b at blk + g * gbytes
  const uint8_t* rec = tile;
  for (int64_t b = 0; b < nb; ++b, blk += S::kBlockBytes, rec += kRecBytes) {
    if (pf.next) {
      for (size_t l = 0; l < pf.next_step; l += 64)
        _mm_prefetch(reinterpret_cast<const char*>(pf.next + b * pf.next_step + l), _MM_HINT_T1);
    }
    const int32_t* corr = reinterpret_cast<const int32_t*>(rec);
    const float* sx = reinterpret_cast<const float*>(rec + 4 * N);
    const int32_t* xq = reinterpret_cast<const int32_t*>(rec + 8 * N);  // [KB / 4][N]
    // Sub-tiles of kSub tokens [h, h + kSub) share the block's weight vectors,
    // loaded again from L1 after the first.
#pragma GCC unroll 3
    for (int h = 0; h < N; h += kSub) {
      const int len = std::min(kSub, N - h);  // the last sub-tile may have fewer
      __m512i acc[G][kSub];  // [group, token of the sub-tile] int32 sums of this block
      // Every block starts from the code-sum correction (int32 addition, so
      // bitwise the same as adding it last). For the 64-step blocks GCC 12
      // then copies one accumulator twice per step of the loop it does not
      // unroll, and still the epilogue's add and broadcast per sum cost more:
      // one core, q8_256 2560x7680 / 7680x2560 and q4_256 2560x7680 at
      // T = 256 (bench_quant 1 avx512 one), alternated three times, GOP/s
      // 838-868 / 860-873 / 896-899 with the add in the epilogue, 862-885 /
      // 862-886 / 899-929 with it first.
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g)
#pragma GCC unroll 16
        for (int u = 0; u < len; ++u) acc[g][u] = _mm512_set1_epi32(corr[h + u]);
      if constexpr (!S::kQ4) {
#pragma GCC unroll 8
        for (int j = 0; j < S::kKb / 4; ++j) {
          __m512i wv[G];
#pragma GCC unroll 4
          for (int g = 0; g < G; ++g) {
            if (h == 0) PrefetchWeights<F, kWarm, N>(blk + g * gbytes, j, S::kKb / 4);
            wv[g] = _mm512_xor_si512(_mm512_loadu_si512(blk + g * gbytes + S::kHeader + 64 * j), x80);
          }
#pragma GCC unroll 16
          for (int u = 0; u < len; ++u) {
            const __m512i xb = _mm512_set1_epi32(xq[j * N + h + u]);
#pragma GCC unroll 4
            for (int g = 0; g < G; ++g) acc[g][u] = Dot(acc[g][u], wv[g], xb);
          }
        }
      } else {
#pragma GCC unroll 4
        for (int c = 0; c < S::kKb / 8; ++c) {
#pragma GCC unroll 2
          for (int half = 0; half < 2; ++half) {
            __m512i wv[G];
#pragma GCC unroll 4
            for (int g = 0; g < G; ++g) {
              if (h == 0 && half == 0) PrefetchWeights<F, kWarm, N>(blk + g * gbytes, c, S::kKb / 8);
              const __m512i p = _mm512_loadu_si512(blk + g * gbytes + S::kHeader + 64 * c);
              const __m512i nib = half == 0 ? p : _mm512_srli_epi16(p, 4);
              wv[g] = _mm512_shuffle_epi8(lut, _mm512_and_si512(nib, m0f));
            }
#pragma GCC unroll 16
            for (int u = 0; u < len; ++u) {
              const __m512i xb = _mm512_set1_epi32(xq[(2 * c + half) * N + h + u]);
#pragma GCC unroll 4
              for (int g = 0; g < G; ++g) acc[g][u] = Dot(acc[g][u], wv[g], xb);
            }
          }
        }
      }
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) {
        const __m512 sw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + g * gbytes)));
#pragma GCC unroll 16
        for (int u = 0; u < len; ++u) {
          const int t = h + u;
          f[g][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[g][u]), sw), _mm512_set1_ps(sx[t]), f[g][t]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    const int64_t rg = r0 + 16 * g;
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(rmask[g], bias + rg) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int t = 0; t < N; ++t) {
      const __m512 v = bias ? _mm512_add_ps(f[g][t], bv) : f[g][t];
      _mm512_mask_storeu_ps(y + t * rows + rg, rmask[g], v);
    }
  }
}

template <int G, WeightFormat F>
RG_TARGET_AVX512 void MicroN(int n, const uint8_t* wg, size_t gbytes, int64_t nb, const uint8_t* tile, float* y,
                             int64_t rows, int64_t r0, const __mmask16* rmask, const float* bias,
                             const WeightPrefetch& pf) {
#define RG_CASE(N)                                                          \
  case N:                                                                   \
    return pf.cold ? Micro<G, N, F, false>(wg, gbytes, nb, tile, y, rows, r0, rmask, bias, pf) \
                   : Micro<G, N, F, true>(wg, gbytes, nb, tile, y, rows, r0, rmask, bias, pf);
  switch (n) {
    RG_CASE(1) RG_CASE(2) RG_CASE(3) RG_CASE(4) RG_CASE(5) RG_CASE(6)
  }
  static_assert(kPairTileAvx512 == 6 && kMaxTile == 16, "MicroN: one case per tile size");
  if constexpr (G == 1) switch (n) {
      RG_CASE(7) RG_CASE(8) RG_CASE(9) RG_CASE(10) RG_CASE(11) RG_CASE(12)
      RG_CASE(13) RG_CASE(14) RG_CASE(15) RG_CASE(16)
    }
#undef RG_CASE
}

inline size_t RoundUp64(size_t n) { return (n + 63) & ~size_t(63); }

inline __mmask16 RowMask(int64_t rows, int64_t r0) {
  const int64_t left = rows - r0;
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

template <WeightFormat F>
RG_TARGET_AVX512 void Kernel(const QuantKernelArgs& a, int64_t g0, int64_t g1) {
  using S = Shape<F>;
  const int nt = a.nt;
  const size_t gbytes = size_t(a.nb) * S::kBlockBytes;
  const int64_t tiles = (a.T + nt - 1) / nt;
  // Group blocks: the weights of a few row groups stay in L2 while every
  // token tile passes over them, so weights stream from DRAM once per call;
  // the activations (T * cols * ~1.1 bytes) come from L2/L3.
  // An even count, so that Micro runs groups in pairs.
  const int64_t gb = std::max<int64_t>(2, int64_t(kGroupBlockBytes / std::max<size_t>(gbytes, 1)) / 2 * 2);
  // Batched decode (a few tiles): a group block's first tile waits on DRAM
  // while the later tiles only compute from L2. Those later tiles therefore
  // pull the next group block into L2, so that the weight stream overlaps the
  // arithmetic. Prefill (many tiles) spends a small share in first tiles, and
  // there a second block in L2 evicts the activations.
  const bool stream_next = tiles >= 2 && tiles <= kStreamNextMaxTiles;
  // One tile (decode, small batches; TileTokens): groups one at a time, so
  // the weights stream from DRAM in order. Several: groups in pairs.
  const bool pairs = tiles > 1;
  RG_DCHECK(!pairs || nt <= kPairTileAvx512);
  for (int64_t gs = g0; gs < g1; gs += gb) {
    const int64_t ge = std::min(g1, gs + gb), next_end = std::min(g1, ge + gb);
    // Bytes of the next block each group of a warm tile prefetches.
    const size_t share = stream_next && next_end > ge
                             ? RoundUp64((size_t(next_end - ge) * gbytes + (tiles - 1) * (ge - gs) - 1) /
                                         size_t((tiles - 1) * (ge - gs)))
                             : 0;
    for (int64_t k = 0; k < tiles; ++k) {
      const int n = int(std::min<int64_t>(nt, a.T - k * nt));
      const uint8_t* tile = ActTile(const_cast<uint8_t*>(a.acts), k, a.nb_acts, nt, S::kKb);
      for (int64_t g = gs; g < ge;) {
        const int64_t r0 = g * 16, seg = r0 / a.seg_rows;
        const size_t seg_offset = size_t(seg * a.nb) * ActRecordBytes(S::kKb) * n;
        // Two groups at once when both exist and read the same segment of x.
        const bool pair = pairs && g + 1 < ge && (r0 + 16) / a.seg_rows == seg;
        const int groups = pair ? 2 : 1;
        const __mmask16 rmask[2] = {RowMask(a.rows, r0), pair ? RowMask(a.rows, r0 + 16) : __mmask16(0)};
        WeightPrefetch pf;
        pf.cold = k == 0 && !(stream_next && gs > g0);  // else streamed in already
        if (share > 0 && k > 0) {
          pf.next = a.w + size_t(ge) * gbytes + size_t((k - 1) * (ge - gs) + (g - gs)) * share;
          pf.next_step = RoundUp64((groups * share + a.nb - 1) / a.nb);
        }
        const uint8_t* wg = a.w + size_t(g) * gbytes;
        float* y = a.y + k * nt * a.rows;
        if (pair) MicroN<2, F>(n, wg, gbytes, a.nb, tile + seg_offset, y, a.rows, r0, rmask, a.bias, pf);
        else MicroN<1, F>(n, wg, gbytes, a.nb, tile + seg_offset, y, a.rows, r0, rmask, a.bias, pf);
        g += groups;
      }
    }
  }
}

template <int KB>
RG_TARGET_AVX512 void QuantizeActs(const float* x, const ActSegments& seg, int64_t T, int nt, int64_t k0,
                                   int64_t k1, uint8_t* acts) {
  const int64_t nbs = seg.blocks(), nb = seg.records(), ld = seg.count * seg.cols;
  alignas(64) int32_t words[kMaxTile * KB / 4];  // [tn][KB / 4] one record's codes, token-major
  alignas(64) int32_t idx[kMaxTile * KB / 4];
  int idx_tn = 0;
  for (int64_t k = k0; k < k1; ++k) {
    const int tn = int(std::min<int64_t>(nt, T - k * nt));
    if (tn != idx_tn) TransposeIndices<KB>(tn, idx), idx_tn = tn;
    uint8_t* tile = ActTile(acts, k, nb, nt, KB);
    for (int64_t s = 0; s < seg.count; ++s)
      for (int64_t b = 0; b < nbs; ++b) {
        uint8_t* rec = tile + size_t(s * nbs + b) * ActRecordBytes(KB) * tn;
        const int n = int(std::min<int64_t>(KB, seg.cols - b * KB));
        for (int t = 0; t < tn; ++t)
          QuantizeBlock<KB>(x + (k * nt + t) * ld + s * seg.cols + b * KB, n, rec, tn, t, words + t * (KB / 4));
        TransposeWords<KB>(words, idx, tn, reinterpret_cast<int32_t*>(rec + 8 * tn));
      }
  }
}

}  // namespace

// Measured per core on Zen 5, 2560x7680 / 7680x2560 x 128 tokens
// (bench_quant 1 avx512 one), GOP/s of pair tiles of 6 / 5: q8_256 794 / 769,
// 812 / 794; q8 714 / 701, 720 / 734; q4_256 854 / 836, 820 / 808; q4 751 /
// 744, 694 / 709. One tile: the q8 formats up to 16 tokens in sub-tiles
// (kSubTileFrom); at T = 16 one pass over the weights instead of three pair
// tiles (bench_quant 2 avx512 decode q8 16, alternated three times:
// 2560x7680 610-700 -> 478-504 us, the 256000x2560 head 19.8-20.5 -> 15.2-16.5
// ms). The q4 formats up to 8, the single-group limit of the registers with
// their codebook lookup in five; at T = 16 in sub-tiles they computed no
// faster than in pairs (both ~450 us for 2560x7680, compute-bound).
int OneTileMaxAvx512(WeightFormat f) { return IsQ4Family(f) ? 8 : kMaxTile; }

void QuantizeActsAvx512(const float* x, const ActSegments& seg, int64_t T, int nt, int64_t k0, int64_t k1,
                        uint8_t* acts) {
  RG_CHECK(nt >= 1 && nt <= kMaxTile, "QuantizeActsAvx512: tile of ", nt, " tokens (at most ", kMaxTile, ")");
  if (seg.kb == 256) QuantizeActs<256>(x, seg, T, nt, k0, k1, acts);
  else QuantizeActs<32>(x, seg, T, nt, k0, k1, acts);
}

void QuantMatMulAvx512(const QuantKernelArgs& a, int64_t g0, int64_t g1) {
  switch (a.format) {
    case WeightFormat::Q8: return Kernel<WeightFormat::Q8>(a, g0, g1);
    case WeightFormat::Q4: return Kernel<WeightFormat::Q4>(a, g0, g1);
    case WeightFormat::Q8_256: return Kernel<WeightFormat::Q8_256>(a, g0, g1);
    case WeightFormat::Q4_256: return Kernel<WeightFormat::Q4_256>(a, g0, g1);
    default: return;
  }
}

}  // namespace rg::quant_internal
