/* CPU-bound benchmark kernels, built twice: to wasm32 (freestanding, no
 * libc, so both wasmc and Wasmtime run it without WASI) and natively (linked
 * into the benchmark binary by build.rs), so run time is compared against
 * native code and against Wasmtime from the same source.
 *
 * Each kernel is `long long NAME(int n)`: it does work proportional to n and
 * returns a checksum, which the benchmark compares across the three builds.
 */

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name)))
#else
#define EXPORT(name)
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

/* Recursive Fibonacci: call-heavy (prologues, stack checks). */
static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
EXPORT(bench_fib) long long bench_fib(int n) { return fib(n); }

/* Sieve of Eratosthenes over a static buffer: memory loads and stores. */
#define SIEVE_MAX (1 << 22)
static unsigned char sieve_buf[SIEVE_MAX];
EXPORT(bench_sieve) long long bench_sieve(int n) {
    if (n > SIEVE_MAX) n = SIEVE_MAX;
    for (int i = 0; i < n; i++) sieve_buf[i] = 1;
    long long count = 0;
    for (int i = 2; i < n; i++) {
        if (sieve_buf[i]) {
            count++;
            for (long long j = (long long)i * i; j < n; j += i) sieve_buf[j] = 0;
        }
    }
    return count;
}

/* Dense matrix multiply in doubles: floating point and loop nests. */
#define MAT 256
static double ma[MAT * MAT], mb[MAT * MAT], mc[MAT * MAT];
EXPORT(bench_matmul) long long bench_matmul(int n) {
    if (n > MAT) n = MAT;
    for (int i = 0; i < n * n; i++) {
        ma[i] = (double)(i % 17) * 0.5;
        mb[i] = (double)(i % 13) * 0.25;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += ma[i * n + k] * mb[k * n + j];
            mc[i * n + j] = s;
        }
    double sum = 0;
    for (int i = 0; i < n * n; i++) sum += mc[i];
    return (long long)sum;
}

/* N-body simulation: sqrt, division, struct arrays. */
typedef struct { double x, y, z, vx, vy, vz, m; } body;
#define NBODIES 5
EXPORT(bench_nbody) long long bench_nbody(int steps) {
    body b[NBODIES];
    for (int i = 0; i < NBODIES; i++) {
        b[i].x = i * 1.1; b[i].y = i * 0.7 - 1.0; b[i].z = i * 0.3;
        b[i].vx = 0.01 * i; b[i].vy = -0.02 * i; b[i].vz = 0.005;
        b[i].m = 1.0 + i * 0.1;
    }
    const double dt = 0.01;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < NBODIES; i++)
            for (int j = i + 1; j < NBODIES; j++) {
                double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
                double d2 = dx * dx + dy * dy + dz * dz + 0.01;
                double mag = dt / (d2 * __builtin_sqrt(d2));
                b[i].vx -= dx * b[j].m * mag; b[i].vy -= dy * b[j].m * mag; b[i].vz -= dz * b[j].m * mag;
                b[j].vx += dx * b[i].m * mag; b[j].vy += dy * b[i].m * mag; b[j].vz += dz * b[i].m * mag;
            }
        for (int i = 0; i < NBODIES; i++) {
            b[i].x += dt * b[i].vx; b[i].y += dt * b[i].vy; b[i].z += dt * b[i].vz;
        }
    }
    double e = 0;
    for (int i = 0; i < NBODIES; i++) e += b[i].x + b[i].y + b[i].z;
    return (long long)(e * 1e6);
}

/* Bitwise CRC-32 over a generated buffer: integer ALU, shifts, branches. */
#define CRC_BUF (1 << 16)
static unsigned char crc_buf[CRC_BUF];
EXPORT(bench_crc32) long long bench_crc32(int rounds) {
    u32 seed = 12345;
    for (int i = 0; i < CRC_BUF; i++) { seed = seed * 1103515245u + 12345u; crc_buf[i] = (unsigned char)(seed >> 16); }
    u32 crc = 0xffffffffu;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < CRC_BUF; i++) {
            crc ^= crc_buf[i];
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
        }
    return (long long)(crc ^ 0xffffffffu);
}

/* Quicksort of pseudo-random 32-bit keys: data-dependent branches, recursion. */
#define SORT_MAX (1 << 20)
static int sort_buf[SORT_MAX];
static void qsort_i(int *a, int lo, int hi) {
    while (lo < hi) {
        int p = a[(lo + hi) / 2], i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { int t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { qsort_i(a, lo, j); lo = i; } else { qsort_i(a, i, hi); hi = j; }
    }
}
EXPORT(bench_qsort) long long bench_qsort(int n) {
    if (n > SORT_MAX) n = SORT_MAX;
    u64 s = 88172645463325252ull;
    for (int i = 0; i < n; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; sort_buf[i] = (int)(s >> 32); }
    qsort_i(sort_buf, 0, n - 1);
    long long h = 0;
    for (int i = 0; i < n; i += 97) h = h * 31 + sort_buf[i];
    return h;
}
