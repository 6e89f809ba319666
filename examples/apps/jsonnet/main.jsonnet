// Three ConfigMaps from one list.
local colors = ['red', 'green', 'blue'];
[
  {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'color-' + c },
    data: { color: c },
  }
  for c in colors
]
