// Taro's preset: React with TypeScript, for the webpack 5 compiler.
module.exports = {
  presets: [['taro', { framework: 'react', ts: true, compiler: 'webpack5' }]],
};
