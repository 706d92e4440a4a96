// Files: an image and an audio clip passed through an op are uploaded with `file/create`.
'use strict';

const { weave, init, flush, report, run } = require('./common');

// A 1x1 PNG and a short WAV header: the bytes are stored as they are.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64'
);
const WAV = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVEfmt '), Buffer.alloc(32)]);

run(async () => {
  const client = await init();
  const describe = weave.op(async function describe(image, audio) {
    return { image_bytes: image.data.length, audio_bytes: audio.data.length };
  });
  const started = Date.now();
  const out = await describe(
    weave.weaveImage({ data: PNG, imageType: 'png' }),
    weave.weaveAudio({ data: WAV, audioType: 'wav' })
  );
  await flush(client);
  report({ out, png_bytes: PNG.length, wav_bytes: WAV.length, seconds: (Date.now() - started) / 1000 });
});
