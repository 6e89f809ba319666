{
  apiVersion: 'v1',
  kind: error 'kind is not decided yet',
  metadata: { name: 'x' },
}
