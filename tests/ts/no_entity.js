// `weave.init("project")` with no entity: the project lands in the key's default entity.
'use strict';

const { weave, init, flush, report, run } = require('./common');

run(async () => {
  const client = await init();
  const hello = weave.op(async function hello(name) {
    return `hello ${name}`;
  });
  await hello('weft');
  await flush(client);
  report({ project_id: client.projectId });
});
