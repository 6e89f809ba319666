{ name: 'from-local-lib' }
