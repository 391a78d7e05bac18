// ort_run.js - times an ONNX file with ONNX Runtime (onnxruntime-node, CPU
// provider, 2 intra-op threads unless ORT_THREADS says otherwise; its threads
// spin while waiting unless OMP_WAIT_POLICY=passive) for make
// bench: the fastest of REPS runs after a warm-up, per batch size, on the
// deterministic inputs unet_bench and unet_ref.py use. Prints key=value lines
// as the other benchmark programs do.
//   node ort_run.js MODULE_DIR MODEL.onnx SIZE REPS unet|image B1,B4,...
'use strict';
const [dir, file, sizeS, repsS, kind, batches] = process.argv.slice(2);
const ort = require(require('path').resolve(dir, 'onnxruntime-node'));

async function main() {
    const S = +sizeS, reps = +repsS, threads = +(process.env.ORT_THREADS || 2);
    const sess = await ort.InferenceSession.create(file, {
        executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
        graphOptimizationLevel: 'all', executionMode: 'sequential',
        // waiting threads sleep when glad's and torch's do (OMP_WAIT_POLICY=passive,
        // mobilenet.sh's default): spinning pools starve each other on a shared machine
        extra: { session: { intra_op: { allow_spinning: process.env.OMP_WAIT_POLICY === 'passive' ? '0' : '1' } } },
    });
    console.log(`ort_version=${ort.env.versions.common}`);
    for (const B of batches.split(',').map(Number)) {
        const n = B * 3 * S * S, x = new Float32Array(n);
        for (let i = 0; i < n; i++) x[i] = ((i * 7919) % 2000) / 1000 - 1;
        const feeds = { x: new ort.Tensor('float32', x, [B, 3, S, S]) };
        if (kind === 'unet') feeds.t = new ort.Tensor('float32', Float32Array.from({ length: B }, (_, i) => [10, 200, 500, 900][i % 4]), [B]);
        await sess.run(feeds);
        let best = 1e30;
        for (let r = 0; r < reps; r++) {
            const t0 = process.hrtime.bigint();
            await sess.run(feeds);
            const d = Number(process.hrtime.bigint() - t0) / 1e9;
            if (d < best) best = d;
        }
        console.log(`forward_b${B}_s=${best.toFixed(5)}`);
    }
}
main().catch(e => { console.error(`ort_run: ${e.message || e}`); process.exit(1); });
