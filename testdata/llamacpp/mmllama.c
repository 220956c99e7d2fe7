// mmllama: runs a GGUF file in an unmodified llama.cpp, for the project's
// cross-engine tests (interop/llamacpp_test.go).
//
// scripts/install-llamacpp.sh builds it against the llama.h and the shared
// libraries it installs into third_party/llama.cpp/ (the prebuilt libraries
// of the npm package @node-llama-cpp/linux-<arch>, the headers of the same
// llama.cpp release from node-llama-cpp's source bundle) and puts it in
// third_party/llama.cpp/bin/. Nothing of llama.cpp is patched or rebuilt:
// this is the loader and the graph every llama.cpp user runs.
//
// Usage:
//
//	mmllama MODEL.gguf IDS [-logits OUT.npy] [-generate N] [-threads T]
//	mmllama MODEL.gguf -tokenize TEXTFILE
//
// The second form prints "tokens A B ..." (after the lines below): llama.cpp's
// tokenization of the file's text (no BOS/EOS added, special-token text not
// parsed), which checks the GGUF's vocabulary, merges and pre-tokenizer.
//
// IDS is a comma-separated list of token ids (the prompt). The prompt is
// evaluated in one batch with the logits of every position requested; with
// -logits they are written as a float32 .npy of shape (tokens, vocab).
// With -generate N, N more tokens are chosen greedily (the first largest
// logit; end-of-generation tokens do not stop it) and fed back one at a
// time. Stdout gets one line per fact, for the tests to parse:
//
//	vocab V           the vocabulary size (the logits' row length)
//	ftype F           llama_model_ftype (general.file_type, llama_ftype)
//	desc TEXT         llama_model_desc, e.g. "mamba ?B Q8_0"
//	generated A B ... the greedy ids (only with -generate)
//
// llama.cpp's warnings and errors go to stderr (everything with
// MMLLAMA_VERBOSE=1). The CPU backend is the best of the libggml-cpu-*.so
// beside libllama for this CPU, from <exe>/../lib; GGML_BACKEND_PATH names
// one .so to load instead. Exit status 1 on any failure, with one line on
// stderr; 2 on bad usage.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml-backend.h"
#include "llama.h"

static int verbose;

// logcb passes llama.cpp's warnings and errors (and with MMLLAMA_VERBOSE
// everything) to stderr.
static void logcb(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    static int last = GGML_LOG_LEVEL_NONE;
    if (level != GGML_LOG_LEVEL_CONT) {
        last = level;
    }
    if (verbose || last >= GGML_LOG_LEVEL_WARN) {
        fputs(text, stderr);
    }
}

static void die(const char *msg, const char *arg) {
    fprintf(stderr, "mmllama: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(1);
}

static void usage(void) {
    fprintf(stderr, "usage: mmllama MODEL.gguf IDS [-logits OUT.npy] [-generate N] [-threads T]\n"
                    "       mmllama MODEL.gguf -tokenize TEXTFILE\n");
    exit(2);
}

// parse_ids parses "1,2,3" into a new array; *n gets the count.
static llama_token *parse_ids(const char *s, int *n) {
    int cap = 16, k = 0;
    llama_token *ids = malloc(sizeof *ids * cap);
    if (!ids) die("out of memory", NULL);
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end != ',' && *end != 0)) {
            die("IDS must be comma-separated non-negative integers", s);
        }
        if (k == cap) {
            cap *= 2;
            ids = realloc(ids, sizeof *ids * cap);
            if (!ids) die("out of memory", NULL);
        }
        ids[k++] = (llama_token)v;
        p = *end ? end + 1 : end;
    }
    if (k == 0) die("no token ids", NULL);
    *n = k;
    return ids;
}

// write_npy writes rows x cols float32 values as a NumPy .npy (version 1.0,
// C order, little-endian).
static void write_npy(const char *path, const float *data, int rows, int cols) {
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int total = 10 + n + 1;
    int padded = (total + 63) / 64 * 64;
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot create", path);
    unsigned short hlen = (unsigned short)(padded - 10);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(hdr, 1, n, f);
    for (int i = total; i < padded; i++) fputc(' ', f);
    fputc('\n', f);
    if (fwrite(data, sizeof(float), (size_t)rows * cols, f) != (size_t)rows * cols || fclose(f) != 0) {
        die("cannot write", path);
    }
}

// argmax returns the index of the first largest of n values.
static llama_token argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (v[i] > v[best]) best = i;
    }
    return best;
}

// tokenize_file prints llama.cpp's tokens of the text in path.
static void tokenize_file(const struct llama_vocab *vocab, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open", path);
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    if (!text) die("out of memory", NULL);
    size_t k;
    while ((k = fread(text + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            if (cap >= (1u << 26)) die("text larger than 64 MiB", path);
            cap *= 2;
            text = realloc(text, cap);
            if (!text) die("out of memory", NULL);
        }
    }
    fclose(f);
    int max = (int)n + 16;
    llama_token *ids = malloc(sizeof *ids * max);
    if (!ids) die("out of memory", NULL);
    int got = llama_tokenize(vocab, text, (int32_t)n, ids, max, false, false);
    if (got < 0) die("llama_tokenize failed on", path);
    printf("tokens");
    for (int i = 0; i < got; i++) printf(" %d", ids[i]);
    printf("\n");
    free(ids);
    free(text);
}

// load_backends loads the CPU backend: GGML_BACKEND_PATH if set, else the
// best libggml-cpu-*.so in <exe>/../lib.
static void load_backends(void) {
    const char *forced = getenv("GGML_BACKEND_PATH");
    if (forced && *forced) {
        if (!ggml_backend_load(forced)) die("cannot load GGML_BACKEND_PATH", forced);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) die("cannot find the executable's folder", NULL);
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    char lib[PATH_MAX + 8];
    snprintf(lib, sizeof lib, "%s/../lib", exe);
    ggml_backend_load_all_from_path(lib);
    if (ggml_backend_reg_count() == 0) die("no ggml backend loaded from", lib);
}

int main(int argc, char **argv) {
    verbose = getenv("MMLLAMA_VERBOSE") && *getenv("MMLLAMA_VERBOSE") == '1';
    if (argc < 3) usage();
    const char *model_path = argv[1];
    const char *npy = NULL;
    int gen = 0, threads = 2;
    for (int i = 3; i < argc && strcmp(argv[2], "-tokenize") != 0; i++) {
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "-logits")) {
            npy = argv[++i];
        } else if (!strcmp(argv[i], "-generate")) {
            gen = atoi(argv[++i]);
            if (gen < 0) usage();
        } else if (!strcmp(argv[i], "-threads")) {
            threads = atoi(argv[++i]);
            if (threads < 1) usage();
        } else {
            usage();
        }
    }
    const char *tokfile = NULL;
    int n_prompt = 0;
    llama_token *prompt = NULL;
    if (!strcmp(argv[2], "-tokenize")) {
        if (argc != 4) usage();
        tokfile = argv[3];
    } else {
        prompt = parse_ids(argv[2], &n_prompt);
    }

    llama_log_set(logcb, NULL);
    load_backends();
    llama_backend_init();

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) die("llama.cpp could not load", model_path);
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    for (int i = 0; i < n_prompt; i++) {
        if (prompt[i] >= n_vocab) die("a token id is outside the vocabulary", argv[2]);
    }
    char desc[256];
    llama_model_desc(model, desc, sizeof desc);
    printf("vocab %d\nftype %d\ndesc %s\n", n_vocab, (int)llama_model_ftype(model), desc);
    if (tokfile) {
        tokenize_file(vocab, tokfile);
        llama_model_free(model);
        return fflush(stdout) == 0 ? 0 : 1;
    }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + gen + 8);
    cp.n_batch = cp.n_ubatch = (uint32_t)n_prompt;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) die("llama.cpp could not create a context for", model_path);

    struct llama_batch b = llama_batch_init(n_prompt, 0, 1);
    for (int i = 0; i < n_prompt; i++) {
        b.token[i] = prompt[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n_prompt;
    if (llama_decode(ctx, b) != 0) die("llama_decode failed on the prompt", NULL);

    if (npy) {
        float *all = malloc(sizeof(float) * (size_t)n_prompt * n_vocab);
        if (!all) die("out of memory", NULL);
        for (int i = 0; i < n_prompt; i++) {
            const float *row = llama_get_logits_ith(ctx, i);
            if (!row) die("llama.cpp returned no logits for a position", NULL);
            memcpy(all + (size_t)i * n_vocab, row, sizeof(float) * n_vocab);
        }
        write_npy(npy, all, n_prompt, n_vocab);
        free(all);
    }

    if (gen > 0) {
        llama_token next = argmax(llama_get_logits_ith(ctx, n_prompt - 1), n_vocab);
        printf("generated");
        for (int k = 0; k < gen; k++) {
            printf(" %d", next);
            if (k + 1 == gen) break;
            struct llama_batch one = llama_batch_get_one(&next, 1);
            if (llama_decode(ctx, one) != 0) die("llama_decode failed while generating", NULL);
            next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
        }
        printf("\n");
    }

    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    free(prompt);
    llama_backend_free();
    return fflush(stdout) == 0 ? 0 : 1;
}
