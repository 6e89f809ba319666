{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'jsonnet-ns' } }
