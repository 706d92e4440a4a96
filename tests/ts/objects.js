// Objects and datasets: published, then read back through the SDK.
'use strict';

const { weave, init, flush, report, run } = require('./common');

run(async () => {
  const client = await init();
  const obj = new weave.WeaveObject({ name: 'settings', description: 'model settings' });
  obj.temperature = 0.5;
  obj.stops = ['\n', 'END'];
  const objRef = await client.publish(obj);

  const dataset = new weave.Dataset({
    name: 'capitals',
    rows: [
      { country: 'France', capital: 'Paris' },
      { country: 'Japan', capital: 'Tokyo' },
      { country: 'Peru', capital: 'Lima' },
    ],
  });
  const datasetRef = await dataset.save();
  const back = await client.get(datasetRef);
  const rows = [];
  for await (const row of back) rows.push(row);
  const objBack = await client.get(objRef);
  await flush(client);
  report({
    object_ref: objRef.uri(),
    dataset_ref: datasetRef.uri(),
    object_read: { temperature: objBack.temperature, stops: objBack.stops },
    rows_read: rows.map(r => ({ country: r.country, capital: r.capital })),
  });
});
