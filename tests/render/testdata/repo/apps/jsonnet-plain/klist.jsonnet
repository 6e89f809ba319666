local l = import 'local.libsonnet';
{
  apiVersion: 'v1',
  kind: 'ConfigMapList',
  items: [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: l.name + '-' + i } }
    for i in [1, 2]
  ],
}
