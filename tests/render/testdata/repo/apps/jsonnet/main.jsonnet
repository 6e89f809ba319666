// Ext vars `env` and `app`, TLAs `replicas` (code) and `tier` (string), a lib from `libs`.
local h = import 'helpers.libsonnet';

function(replicas, tier='web') [
  h.configMap('jsonnet-' + std.extVar('env'), { tier: tier, app: std.extVar('app') }),
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'jsonnet-deploy' },
    spec: { replicas: replicas },
  },
]
