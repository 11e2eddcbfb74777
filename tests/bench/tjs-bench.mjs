// transformers.js' side of `cliplens bench browser`: the page's query names the
// device (`webgpu` or `wasm`) and dtype (`fp32`); the models load at once
// (vision tower, text tower, tokenizer: what a CLIP demo loads), then
// `window.runBench(plan)` times the plan of CLIP Lens' Speed page
// (src/speed.rs) and returns a report of the same shape: random pixels per
// batch size, the text tower on "a photo of a {noun}." prompts tokenized once
// (padded to the longest, as CLIP Lens cuts its batch), one warm-up call then
// `runs` timed calls, each ending with the embeddings on the host.
import { env, AutoTokenizer, CLIPVisionModelWithProjection, CLIPTextModelWithProjection, Tensor } from '/tjs/transformers.min.js';

const query = new URLSearchParams(location.search);
const device = query.get('device') ?? 'webgpu';
const dtype = query.get('dtype') ?? 'fp32';
const model = query.get('model') ?? 'bench';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/models/';
// The same onnxruntime-web build transformers.js picks by default, from this origin.
env.backends.onnx.wasm.wasmPaths = { mjs: '/ort/ort-wasm-simd-threaded.asyncify.mjs', wasm: '/ort/ort-wasm-simd-threaded.asyncify.wasm' };

const NOUNS = ['cat', 'dog', 'pilot', 'nurse', 'doctor', 'chef', 'teacher', 'farmer', 'bicycle', 'car', 'truck', 'boat',
  'mountain', 'beach', 'forest', 'city street', 'kitchen', 'office', 'bird', 'horse', 'apple', 'banana',
  'guitar', 'piano', 'laptop', 'phone', 'chair', 'table', 'house', 'bridge', 'river', 'sunset'];

// The same generator is not needed: random pixels cost the same whatever their values.
function randomPixels(batch, size, seed) {
  let s = seed >>> 0 || 1;
  const data = new Float32Array(batch * 3 * size * size);
  for (let i = 0; i < data.length; i += 1) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    data[i] = (s / 4294967296) * 4 - 2;
  }
  return new Tensor('float32', data, [batch, 3, size, size]);
}

async function load() {
  const options = { device, dtype };
  const [tokenizer, vision, text] = await Promise.all([
    AutoTokenizer.from_pretrained(model),
    CLIPVisionModelWithProjection.from_pretrained(model, options),
    CLIPTextModelWithProjection.from_pretrained(model, options),
  ]);
  return { tokenizer, vision, text, size: vision.config.vision_config?.image_size ?? vision.config.image_size ?? 224 };
}

const loaded = load();
loaded.then(
  () => {
    window.benchReady = { seconds: performance.now() / 1000, device, dtype, threads: env.backends.onnx.wasm.numThreads ?? null };
    document.querySelector('#status').textContent = `ready: ${model} on ${device} (${dtype})`;
  },
  (e) => {
    window.benchError = String(e?.stack ?? e);
    document.querySelector('#status').textContent = `failed: ${e}`;
  },
);

window.runBench = async (plan) => {
  const { tokenizer, vision, text, size } = await loaded;
  const report = { plan, image: [], text: null, complete: false };
  const time = async (call) => {
    const seconds = [];
    for (let i = 0; i <= plan.runs; i += 1) {
      const start = performance.now();
      await call();
      if (i > 0) seconds.push((performance.now() - start) / 1000);
    }
    return seconds;
  };
  for (const batch of plan.batches) {
    const pixel_values = randomPixels(batch, size, batch);
    const seconds = await time(async () => {
      const { image_embeds } = await vision({ pixel_values });
      // On the host, as CLIP Lens reads its embeddings back.
      const data = image_embeds.location === 'cpu' ? image_embeds.data : (await image_embeds.getData?.()) ?? image_embeds.data;
      if (!data.length) throw new Error('no image embeddings');
    });
    report.image.push({ batch, seconds });
  }
  if (plan.texts > 0) {
    const prompts = Array.from({ length: plan.texts }, (_, i) => `a photo of a ${NOUNS[i % NOUNS.length]}.`);
    const inputs = tokenizer(prompts, { padding: true, truncation: true });
    report.text = await time(async () => {
      const { text_embeds } = await text(inputs);
      if (!text_embeds.data.length) throw new Error('no text embeddings');
    });
  }
  report.complete = true;
  return report;
};
