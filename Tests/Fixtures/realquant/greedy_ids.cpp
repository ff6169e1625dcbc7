// graft-greedy-ids: tokenizes a prompt file with llama.cpp (special tokens parsed, nothing added),
// decodes it, then takes the argmax of the logits N times (no stop at end-of-generation) and
// prints one JSON object: the prompt ids, the generated ids, and each step's two largest logits.
//
// usage: graft-greedy-ids -m MODEL.gguf -f PROMPT.txt [-n 32] [-t 2]
#include "llama.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static void quiet(ggml_log_level, const char *, void *) {}

static int fail(const char * what) {
    fprintf(stderr, "graft-greedy-ids: %s\n", what);
    return 1;
}

int main(int argc, char ** argv) {
    std::string model_path, prompt_path;
    int n_new = 32, threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-m")) model_path = argv[i + 1];
        else if (!strcmp(argv[i], "-f")) prompt_path = argv[i + 1];
        else if (!strcmp(argv[i], "-n")) n_new = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else return fail("unknown option (expected -m MODEL -f PROMPT [-n N] [-t THREADS])");
    }
    if (model_path.empty() || prompt_path.empty() || n_new <= 0) return fail("need -m MODEL and -f PROMPT");

    std::ifstream in(prompt_path, std::ios::binary);
    if (!in) return fail("cannot read the prompt file");
    std::stringstream text;
    text << in.rdbuf();
    const std::string prompt = text.str();

    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(model_path.c_str(), mp);
    if (!model) return fail("cannot load the model");
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    // add_special = false: the rendered chat template carries every special token itself.
    const int n_prompt = -llama_tokenize(vocab, prompt.data(), (int32_t) prompt.size(), nullptr, 0, false, true);
    std::vector<llama_token> ids(n_prompt);
    if (llama_tokenize(vocab, prompt.data(), (int32_t) prompt.size(), ids.data(), n_prompt, false, true) != n_prompt)
        return fail("tokenization failed");

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_prompt + n_new + 8;
    cp.n_batch = n_prompt;
    cp.n_ubatch = n_prompt;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) return fail("cannot create the context");

    std::vector<llama_token> out;
    std::vector<float> top1, top2;
    std::vector<llama_token> feed = ids;
    for (int step = 0; step < n_new; ++step) {
        if (llama_decode(ctx, llama_batch_get_one(feed.data(), (int32_t) feed.size())) != 0) return fail("decode failed");
        const float * logits = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int v = 1; v < n_vocab; ++v) if (logits[v] > logits[best]) best = v;
        float second = -INFINITY;
        for (int v = 0; v < n_vocab; ++v) if (v != best && logits[v] > second) second = logits[v];
        out.push_back(best);
        top1.push_back(logits[best]);
        top2.push_back(second);
        feed.assign(1, best);
    }

    printf("{\"prompt_ids\": [");
    for (size_t i = 0; i < ids.size(); ++i) printf("%s%d", i ? ", " : "", ids[i]);
    printf("], \"ids\": [");
    for (size_t i = 0; i < out.size(); ++i) printf("%s%d", i ? ", " : "", out[i]);
    printf("], \"top1\": [");
    for (size_t i = 0; i < top1.size(); ++i) printf("%s%.6g", i ? ", " : "", top1[i]);
    printf("], \"top2\": [");
    for (size_t i = 0; i < top2.size(); ++i) printf("%s%.6g", i ? ", " : "", top2[i]);
    printf("]}\n");

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
