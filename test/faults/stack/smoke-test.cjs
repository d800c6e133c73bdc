// The service answers on this host with the release just deployed.
fetch(`http://127.0.0.1:${process.env.HD_VAR_PORT}/health`)
  .then((r) => r.json())
  .then((body) => {
    if (body.release !== process.env.HD_RELEASE)
      throw new Error(`serves ${body.release}, expected ${process.env.HD_RELEASE}`);
    console.log(`smoke test passed: release ${body.release}`);
  })
  .catch((err) => {
    console.error(`smoke test failed: ${err.message}`);
    process.exit(1);
  });
