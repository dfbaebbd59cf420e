/* The native EM kernel of genverify.models.em_native: one fused E+M pass over binary data, exact integer sums.
 *
 * Built at first use by genverify/models/em_native.py (cc -O3 -march=native), whose docstring describes the
 * method; portable C with GCC/Clang vector extensions (8 int32 lanes: AVX-512VL, AVX2, NEON, or plain SSE).
 *
 * The data: every image x_n in {0,1}^D is cut into G groups of 4 pixels; a group's 4 bits are a nibble
 * v in 0..15, and row n is stored as the list of its NONZERO nibbles, entry e = 16 g + v (uint16).
 *
 * E-step (logits): with fixed-point weights q_kd (|q| < 2^23), the table T[e] (kp = 8 kv int32 lanes) holds
 * sum_{b in v} q_{k, 4g+b}, so x_n . q_k = sum over the row's entries of T[e][k]: one table row per nonzero
 * nibble instead of four multiply-adds per pixel. Partial sums over <= 32 entries stay below 2^30 in int32
 * and are widened into int64: the sum is exact.
 *
 * M-step (sufficient statistics): the responsibilities in fixed point, q_nk = round(eta_nk (2^24 - 1)), are
 * added into buckets B[k][e] += q_nk over the row's entries; S_kd = sum_{v with bit b} B[k][16 g + v] for
 * d = 4g + b. Most rows have one or two nonzero q_nk (q is exactly 0 below 2^-25): those add scalars into
 * component-major buckets, grouped by component over a block of rows; other rows add whole vectors into
 * entry-major buckets. Buckets are int32, moved into int64 before any could exceed 2^31 - 1: exact sums.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define EM_ABI 2
#define LANES 8 /* int32 lanes per vector (32 bytes: on AVX-512 too, fewer bytes per table row than 64) */
#define MAXKV 8 /* up to 8 vectors: K <= 64 (kv is 1, 2, 3, 4 or 8: fewer variants to compile) */
#define SCALAR_MAX 4
#define AI static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

typedef int32_t v8i32 __attribute__((vector_size(32), aligned(32)));
typedef int64_t v4i64 __attribute__((vector_size(32), aligned(32)));
typedef int64_t v8i64 __attribute__((vector_size(64), aligned(64)));
typedef double v8f64 __attribute__((vector_size(64), aligned(64)));
typedef float v8f32 __attribute__((vector_size(32), aligned(32)));

int em_abi(void) { return EM_ABI; }

/* ------------------------------------------------------------------ E-step */

/* x_n . q_k for every k, exact, into kv int64 vectors of 8. The table's lanes are stored permuted (lane 2i of
 * a vector holds component i, lane 2i+1 component 4 + i) so that widening even and odd int32 lanes by shifts
 * yields the components in order. */
AI void row_logits(const uint16_t *off, int64_t cnt, const char *table, const int kv, v8i64 *out) {
    const size_t ent = (size_t)kv * sizeof(v8i32);
    v4i64 acc64[2 * MAXKV];
    UNROLL for (int v = 0; v < 2 * kv; v++) acc64[v] = (v4i64){0};
    for (int64_t i = 0; i < cnt; i += 32) {
        const int64_t m = cnt - i < 32 ? cnt - i : 32;
        v8i32 acc[MAXKV];
        UNROLL for (int v = 0; v < kv; v++) acc[v] = (v8i32){0};
        for (int64_t j = 0; j < m; j++) {
            const v8i32 *t = (const v8i32 *)(table + (size_t)off[i + j] * ent);
            UNROLL for (int v = 0; v < kv; v++) acc[v] += t[v];
        }
        UNROLL for (int v = 0; v < kv; v++) {
            const v4i64 x = (v4i64)acc[v];
            acc64[2 * v] += (x << 32) >> 32; /* even int32 lanes, sign-extended */
            acc64[2 * v + 1] += x >> 32;     /* odd lanes */
        }
    }
    memcpy(out, acc64, (size_t)kv * sizeof(v8i64));
}

AI v8f64 max64(v8f64 a, v8f64 b) {
    const v8i64 m = (v8i64)(a > b);
    return (v8f64)(((v8i64)a & m) | ((v8i64)b & ~m));
}

AI v8f32 select32(v8i32 m, v8f32 a, v8f32 b) { return (v8f32)(((v8i32)a & m) | ((v8i32)b & ~m)); }

/* exp(t) for t in [-80, 0], float32: 2^n p(r), r = t - n log 2 in [-log2/2, log2/2], p of degree 7 (relative
 * error < 1e-8 before rounding; 2^n stays a normal number). */
AI v8f32 exp_f32(v8f32 t) {
    const v8f32 magic = (v8f32){0} + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const v8f32 n = (t * 1.44269504088896341f + magic) - magic;
    v8f32 r = t - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    v8f32 p = (v8f32){0} + (1.0f / 5040.0f);
    p = p * r + (1.0f / 720.0f);
    p = p * r + (1.0f / 120.0f);
    p = p * r + (1.0f / 24.0f);
    p = p * r + (1.0f / 6.0f);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v8i32 bits;
    memcpy(&bits, &p, sizeof bits);
    bits += __builtin_convertvector(n, v8i32) << 23;
    memcpy(&p, &bits, sizeof p);
    return p;
}

/* One row's log joint l_k = Q_k 2^-s_k + c_k -> responsibilities in fixed point qr (kv*8 int32, natural order;
 * padded lanes 0). As the torch kernel: top = max_k l_k, e_k = exp(float32(l_k - top)) with exponents below -80
 * raised to -80, eta_k = e_k / sum e, qr_k = round-half-even(float32(eta_k (2^24 - 1))).
 * Returns top; *norm = sum_k e_k (in [1, K]), so log P(x_n) = top + log(norm). */
AI double row_resp(const v8i64 *q, const v8f64 *scale, const v8f64 *c, const v8f32 *mask, const int kv, int32_t *qr,
                   float *norm) {
    v8f64 joint[MAXKV];
    v8f64 mx = (v8f64){0} - INFINITY;
    UNROLL for (int v = 0; v < kv; v++) {
        joint[v] = __builtin_convertvector(q[v], v8f64) * scale[v] + c[v]; /* padded lanes: c = -inf */
        mx = max64(joint[v], mx);
    }
    double top = mx[0];
    for (int l = 1; l < 8; l++) top = mx[l] > top ? mx[l] : top;
    v8f32 e[MAXKV];
    v8f32 sum = (v8f32){0};
    UNROLL for (int v = 0; v < kv; v++) {
        v8f32 t = __builtin_convertvector(joint[v] - top, v8f32);
        t = select32(t < -80.0f, (v8f32){0} - 80.0f, t);
        e[v] = exp_f32(t) * mask[v]; /* mask: 1 for a component, 0 for padding */
        sum += e[v];
    }
    float s = 0.0f;
    for (int l = 0; l < 8; l++) s += sum[l];
    UNROLL for (int v = 0; v < kv; v++) {
        const v8f32 x = (e[v] / s) * 16777215.0f;
        /* round half to even: adding 2^23 rounds x < 2^23 to an integer; x >= 2^23 already is one */
        const v8f32 y = select32(x >= 8388608.0f, x, (x + 8388608.0f) - 8388608.0f);
        const v8i32 qi = __builtin_convertvector(y, v8i32);
        memcpy(qr + 8 * v, &qi, sizeof qi);
    }
    *norm = s;
    return top;
}

/* ------------------------------------------------------------------ M-step */

typedef struct {
    int32_t *bc;  /* kp x E int32, component-major */
    int64_t *bc64;
    int32_t *be;  /* E x kp int32, entry-major */
    int64_t *be64;
    int64_t n_entries; /* E */
    int64_t *nk;       /* kp: sum_n qr_nk */
    int64_t run_c[MAXKV * LANES]; /* what each int32 bucket lane has received since its last flush */
    int64_t run_e[MAXKV * LANES];
    int used_e; /* whether any row took the vector path */
} msum_state;

/* Scalar path: B[j][e] += val over one row's entries e (component-major buckets of component j). */
AI void msum_scalar(msum_state *st, int j, const uint16_t *off, int64_t cnt, int32_t val) {
    const int64_t E = st->n_entries;
    int32_t *b = st->bc + (size_t)j * E;
    if (st->run_c[j] + val > INT32_MAX) { /* a bucket lane could overflow: move them to int64 */
        int64_t *b64 = st->bc64 + (size_t)j * E;
        for (int64_t i = 0; i < E; i++) {
            b64[i] += b[i];
            b[i] = 0;
        }
        st->run_c[j] = 0;
    }
    st->run_c[j] += val;
    for (int64_t i = 0; i < cnt; i++) b[off[i]] += val;
}

/* Vector path: B[e][:] += qr over one row's entries e (entry-major buckets, all components at once). */
AI void msum_vector(msum_state *st, const uint16_t *off, int64_t cnt, const int32_t *qr, int k, const int kv) {
    const int64_t E = st->n_entries;
    const int kp = kv * LANES;
    int flush = 0;
    for (int j = 0; j < k; j++) flush |= st->run_e[j] + qr[j] > INT32_MAX;
    if (flush) {
        for (int64_t i = 0; i < E * kp; i++) {
            st->be64[i] += st->be[i];
            st->be[i] = 0;
        }
        memset(st->run_e, 0, sizeof st->run_e);
    }
    for (int j = 0; j < k; j++) st->run_e[j] += qr[j];
    st->used_e = 1;
    const v8i32 *qv = (const v8i32 *)qr;
    const size_t ent = (size_t)kv * sizeof(v8i32);
    for (int64_t i = 0; i < cnt; i++) {
        v8i32 *b = (v8i32 *)((char *)st->be + (size_t)off[i] * ent);
        UNROLL for (int v = 0; v < kv; v++) b[v] += qv[v];
    }
}

/* The row's nonzero components (up to SCALAR_MAX of them, in which); returns how many are nonzero. */
AI int nonzero(const int32_t *qr, const int kv, int *which) {
    uint64_t bits = 0; /* branch-free: which components are nonzero varies from row to row */
    UNROLL for (int v = 0; v < kv; v++) {
        v8i32 x;
        memcpy(&x, qr + LANES * v, sizeof x);
        const v8i32 nz = x != 0;
        for (int l = 0; l < LANES; l++) bits |= (uint64_t)(nz[l] & 1) << (LANES * v + l);
    }
    const int count = __builtin_popcountll(bits);
    if (count <= SCALAR_MAX) {
        for (int z = 0; z < count; z++, bits &= bits - 1) which[z] = __builtin_ctzll(bits);
    }
    return count;
}

AI void row_msum(msum_state *st, const uint16_t *off, int64_t cnt, const int32_t *qr, int k, const int kv) {
    int which[SCALAR_MAX];
    for (int j = 0; j < k; j++) st->nk[j] += qr[j];
    const int nz = nonzero(qr, kv, which);
    if (nz > SCALAR_MAX) {
        msum_vector(st, off, cnt, qr, k, kv);
        return;
    }
    for (int z = 0; z < nz; z++) msum_scalar(st, which[z], off, cnt, qr[which[z]]);
}

static void msum_begin(msum_state *st, int32_t *bc, int64_t *bc64, int32_t *be, int64_t *be64, int64_t E, int kp,
                       int64_t *nk) {
    st->bc = bc, st->bc64 = bc64, st->be = be, st->be64 = be64, st->n_entries = E, st->nk = nk;
    memset(bc, 0, sizeof(int32_t) * (size_t)(E * kp));
    memset(be, 0, sizeof(int32_t) * (size_t)(E * kp));
    memset(bc64, 0, sizeof(int64_t) * (size_t)(E * kp));
    memset(be64, 0, sizeof(int64_t) * (size_t)(E * kp));
    memset(nk, 0, sizeof(int64_t) * (size_t)kp);
    memset(st->run_c, 0, sizeof st->run_c);
    memset(st->run_e, 0, sizeof st->run_e);
    st->used_e = 0;
}

/* The buckets' totals as pixel sums: S[j][4g + b] = sum over nibbles v with bit b of B[j][16 g + v]
 * (int64, kp x 4G, row j = component j; both bucket kinds and their int64 parts). */
static void msum_end(msum_state *st, int kp, int64_t *sums) {
    const int64_t E = st->n_entries, groups = E / 16;
    if (st->used_e) { /* fold the entry-major buckets into the component-major ones, 16 entries at a time */
        for (int64_t e0 = 0; e0 < E; e0 += 16) {
            for (int j = 0; j < kp; j++) {
                for (int64_t e = e0; e < e0 + 16; e++) st->bc64[(size_t)j * E + e] += st->be64[e * kp + j] + st->be[e * kp + j];
            }
        }
    }
    for (int j = 0; j < kp; j++) {
        const int32_t *b = st->bc + (size_t)j * E;
        const int64_t *b64 = st->bc64 + (size_t)j * E;
        int64_t *out = sums + (size_t)j * 4 * groups;
        for (int64_t g = 0; g < groups; g++) {
            int64_t total[16];
            for (int v = 0; v < 16; v++) total[v] = b64[16 * g + v] + b[16 * g + v];
            for (int bit = 0; bit < 4; bit++) {
                int64_t sum = 0;
                for (int v = 1; v < 16; v++) sum += (v >> bit & 1) ? total[v] : 0;
                out[4 * g + bit] = sum;
            }
        }
    }
}

/* The E-step table from integer weights q (4G x kv*8 int32, row d = pixel d, lanes already permuted as
 * row_logits wants): row 16 g + v = sum of the rows 4g + b over the set bits b of v (|sum| < 2^25). */
void em_table(const int32_t *q, int64_t groups, int kv, int32_t *table) {
    const int kp = kv * LANES;
    for (int64_t g = 0; g < groups; g++) {
        int32_t *t = table + (size_t)g * 16 * kp;
        memset(t, 0, sizeof(int32_t) * kp);
        for (int v = 1; v < 16; v++) {
            const int32_t *prev = t + (size_t)(v & (v - 1)) * kp, *add = q + (size_t)(4 * g + __builtin_ctz(v)) * kp;
            for (int l = 0; l < kp; l++) t[(size_t)v * kp + l] = prev[l] + add[l];
        }
    }
}

/* ------------------------------------------------------------------ entry points (rows [r0, r1)) */

/* Rows are taken in blocks of BLOCK: the E-step of a block's rows, then its scalar bucket additions grouped
 * by component, so that one component's buckets stay in L1 while its rows are added. */
#define BLOCK 256

typedef struct {
    int32_t row, val;
} item;

AI double fused(const uint16_t *off, const int64_t *rowptr, int64_t r0, int64_t r1, const char *table,
                const double *scale, const double *c, const float *mask, int k, const int kv, msum_state *st) {
    int32_t qr[MAXKV * LANES] __attribute__((aligned(64))) = {0};
    v8i64 q[MAXKV];
    item items[BLOCK * SCALAR_MAX], sorted[BLOCK * SCALAR_MAX];
    int comp[BLOCK * SCALAR_MAX];
    double total = 0.0;
    for (int64_t b0 = r0; b0 < r1; b0 += BLOCK) {
        const int64_t b1 = b0 + BLOCK < r1 ? b0 + BLOCK : r1;
        int count[MAXKV * LANES + 1] = {0};
        int m = 0;
        double norms = 1.0; /* log P(x_n) = top_n + log(norm_n); norms multiplies <= 64 of them, each in [1, 64] */
        v8i32 nk32[MAXKV]; /* N_k over <= 64 rows: < 2^30 */
        UNROLL for (int v = 0; v < kv; v++) nk32[v] = (v8i32){0};
        for (int64_t n = b0; n < b1; n++) {
            const uint16_t *o = off + rowptr[n];
            const int64_t cnt = rowptr[n + 1] - rowptr[n];
            row_logits(o, cnt, table, kv, q);
            float norm;
            total += row_resp(q, (const v8f64 *)scale, (const v8f64 *)c, (const v8f32 *)mask, kv, qr, &norm);
            norms *= norm;
            UNROLL for (int v = 0; v < kv; v++) {
                v8i32 x;
                memcpy(&x, qr + LANES * v, sizeof x);
                nk32[v] += x;
            }
            if (((n - b0) & 63) == 63 || n == b1 - 1) {
                total += log(norms);
                norms = 1.0;
                UNROLL for (int v = 0; v < kv; v++) {
                    for (int l = 0; l < LANES; l++) st->nk[LANES * v + l] += nk32[v][l];
                    nk32[v] = (v8i32){0};
                }
            }
            int which[SCALAR_MAX];
            const int nz = nonzero(qr, kv, which);
            if (nz > SCALAR_MAX) {
                msum_vector(st, o, cnt, qr, k, kv);
                continue;
            }
            for (int z = 0; z < nz; z++) {
                comp[m] = which[z];
                items[m++] = (item){(int32_t)(n - b0), qr[which[z]]};
                count[which[z] + 1]++;
            }
        }
        for (int j = 0; j < k; j++) count[j + 1] += count[j]; /* counting sort of the items by component */
        for (int i = 0; i < m; i++) sorted[count[comp[i]]++] = items[i];
        for (int j = 0, i = 0; j < k; j++) {
            for (; i < count[j]; i++) {
                const int64_t n = b0 + sorted[i].row;
                msum_scalar(st, j, off + rowptr[n], rowptr[n + 1] - rowptr[n], sorted[i].val);
            }
        }
    }
    return total;
}

/* One fused E+M pass over rows [r0, r1): returns sum_n log P(x_n); sums (kv*8 x 4G int64: S[k][d] =
 * sum_n qr_nk x_nd) and nk (kv*8: sum_n qr_nk) are overwritten with this range's sums; bc, bc64, be, be64
 * (kv*8*E each) are scratch. table, bc and be must be 64-byte aligned. */
double em_fused(const uint16_t *off, const int64_t *rowptr, int64_t r0, int64_t r1, const int32_t *table,
                const double *scale, const double *c, const float *mask, int k, int kv, int32_t *bc, int64_t *bc64,
                int32_t *be, int64_t *be64, int64_t n_entries, int64_t *nk, int64_t *sums) {
    msum_state st;
    msum_begin(&st, bc, bc64, be, be64, n_entries, kv * LANES, nk);
    /* aligned copies of the per-component constants (the caller's arrays may be unaligned) */
    double sc[MAXKV * LANES] __attribute__((aligned(64))), cc[MAXKV * LANES] __attribute__((aligned(64)));
    float mk[MAXKV * LANES] __attribute__((aligned(64)));
    memcpy(sc, scale, sizeof(double) * kv * LANES);
    memcpy(cc, c, sizeof(double) * kv * LANES);
    memcpy(mk, mask, sizeof(float) * kv * LANES);
    const char *t = (const char *)table;
    double total;
    switch (kv) {
    case 1: total = fused(off, rowptr, r0, r1, t, sc, cc, mk, k, 1, &st); break;
    case 2: total = fused(off, rowptr, r0, r1, t, sc, cc, mk, k, 2, &st); break;
    case 3: total = fused(off, rowptr, r0, r1, t, sc, cc, mk, k, 3, &st); break;
    case 4: total = fused(off, rowptr, r0, r1, t, sc, cc, mk, k, 4, &st); break;
    default: total = fused(off, rowptr, r0, r1, t, sc, cc, mk, k, 8, &st); break;
    }
    msum_end(&st, kv * LANES, sums);
    return total;
}

/* The M-step alone from given fixed-point responsibilities qr (rows x kv*8 int32, row r0 first); outputs
 * as em_fused's. */
void em_msums(const uint16_t *off, const int64_t *rowptr, int64_t r0, int64_t r1, const int32_t *qr, int k, int kv,
              int32_t *bc, int64_t *bc64, int32_t *be, int64_t *be64, int64_t n_entries, int64_t *nk,
              int64_t *sums) {
    msum_state st;
    const int kp = kv * LANES;
    msum_begin(&st, bc, bc64, be, be64, n_entries, kp, nk);
    for (int64_t n = r0; n < r1; n++) {
        const uint16_t *o = off + rowptr[n];
        const int64_t cnt = rowptr[n + 1] - rowptr[n];
        int32_t row[MAXKV * LANES] __attribute__((aligned(64)));
        memcpy(row, qr + (n - r0) * kp, sizeof(int32_t) * kp);
        switch (kv) {
        case 1: row_msum(&st, o, cnt, row, k, 1); break;
        case 2: row_msum(&st, o, cnt, row, k, 2); break;
        case 3: row_msum(&st, o, cnt, row, k, 3); break;
        case 4: row_msum(&st, o, cnt, row, k, 4); break;
        default: row_msum(&st, o, cnt, row, k, 8); break;
        }
    }
    msum_end(&st, kp, sums);
}

/* The E-step's exact integer logits alone: out (rows x kv*8 int64, components in order). */
void em_logits(const uint16_t *off, const int64_t *rowptr, int64_t r0, int64_t r1, const int32_t *table, int kv,
               int64_t *out) {
    const char *t = (const char *)table;
    for (int64_t n = r0; n < r1; n++) {
        v8i64 q[MAXKV];
        const uint16_t *o = off + rowptr[n];
        const int64_t cnt = rowptr[n + 1] - rowptr[n];
        switch (kv) {
        case 1: row_logits(o, cnt, t, 1, q); break;
        case 2: row_logits(o, cnt, t, 2, q); break;
        case 3: row_logits(o, cnt, t, 3, q); break;
        case 4: row_logits(o, cnt, t, 4, q); break;
        default: row_logits(o, cnt, t, 8, q); break;
        }
        memcpy(out + (n - r0) * kv * LANES, q, (size_t)kv * sizeof(v8i64));
    }
}
