// jobs.wgsl: the job table shared by the matvec and matmul kernels, their
// epilogues and activations. Include after formats.wgsl; the including file
// declares WG and the binding W.

// Epilogues.
const EPI_NONE: u32 = 0u;
const EPI_TANH: u32 = 1u;     // tanh (decay LoRA)
const EPI_SIGMOID: u32 = 2u;  // logistic (gate LoRA)
const EPI_RELU2: u32 = 3u;    // max(0, y)² (channel mix)
const EPI_ADD: u32 = 4u;      // y[t][row] += result (residual)

struct Job {
    fmt: u32,        // ggml type id of the weights
    rows: u32,       // rows of this job
    k: u32,          // columns (multiple of 8)
    q: u32,          // word offset of the quants plane in W
    s: u32,          // word offset of the scales plane in W
    x_off: u32,      // float offset of token 0's input in act
    x_stride: u32,   // floats between tokens' inputs
    y_off: u32,      // float offset of token 0's output row 0 in act
    y_stride: u32,   // floats between tokens' outputs
    epi: u32,        // epilogue
    wg_start: u32,   // first workgroup of this job
    _pad: u32,
}

struct MatvecParams {
    n_jobs: u32,
    t: u32,          // tokens (rows of x) of this dispatch (≤ MAXT for matvec)
    _p1: u32,
    _p2: u32,
    jobs: array<Job, 8>,
}

// dq8 reads 8 weights of any format the kernel was specialised for: a
// direct call when there is one (no branch), else a switch on fmt.
fn dq8(fmt: u32, q: u32, s: u32, k: u32, row: u32, p: u32) -> W8 {
    {{DQ8_BODY}}
}

fn tanh_safe(x: f32) -> f32 {
    return tanh(clamp(x, -10.0, 10.0));
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-clamp(x, -88.0, 88.0)));
}

// apply_epi finishes output element o of a job (EPI_ADD reads act[o]).
fn apply_epi(epi: u32, y: f32, o: u32) -> f32 {
    switch epi {
        case 1u: {
            return tanh_safe(y);
        }
        case 2u: {
            return sigmoid(y);
        }
        case 3u: {
            let r = max(y, 0.0);
            return r * r;
        }
        case 4u: {
            return act[o] + y;
        }
        default: {
            return y;
        }
    }
}

// find_job returns the index of the job that owns workgroup g (jobs are
// ordered by wg_start).
fn find_job(g: u32) -> u32 {
    var j = 0u;
    for (var i = 1u; i < P.n_jobs; i = i + 1u) {
        if (g >= P.jobs[i].wg_start) {
            j = i;
        }
    }
    return j;
}
