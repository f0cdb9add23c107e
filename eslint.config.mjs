// ESLint flat config: typescript-eslint's recommended rules (the syntactic set: type-aware linting would repeat
// `tsc -b` at several times its cost) and @effect/eslint-plugin. `npm run lint`.
//
// Formatting is the plugin's dprint rule, with the Effect monorepo's settings (120 columns, no semicolons, double
// quotes), always on: `npm run format` applies it. In .tsx files a generic arrow function needs `<A,>`, which dprint
// rewrites to `<A>` (a JSX tag): write a function declaration there.
//
// Relaxed, as in the Effect monorepo's own config:
// - no-explicit-any: `any` appears in type-level code where Effect's own types need it (`HttpApi.Any`-style
//   constraints, conditional types over groups); STYLE.md's "no any" is a review rule, tsc's strict mode the check.
// - no-empty-object-type: `{}` is the empty context/requirement in Effect's generics.
// - prefer-rest-params: `pipeArguments(this, arguments)` is Effect's `Pipeable` idiom.
// - no-unused-vars: a leading underscore marks a deliberately unused binding (rest-sibling omission, placeholders).
// - no-unused-expressions: a ternary of calls (`paused ? a.pause() : a.resume()`) is a statement here.
import effect from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: [
      "**/node_modules/**",
      "**/dist/**",
      "**/build/**",
      "coverage/**",
      "apps/console/test/artifacts/**",
      "**/.tmp/**"
    ]
  },
  {
    files: ["**/*.ts", "**/*.tsx", "**/*.mjs"],
    extends: [tseslint.configs.recommended],
    plugins: { "@effect": effect },
    rules: {
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "prefer-rest-params": "off",
      "@typescript-eslint/no-unused-vars": ["error", {
        argsIgnorePattern: "^_",
        varsIgnorePattern: "^_",
        caughtErrorsIgnorePattern: "^_",
        destructuredArrayIgnorePattern: "^_",
        ignoreRestSiblings: true
      }],
      "@typescript-eslint/no-unused-expressions": ["error", { allowTernary: true, allowShortCircuit: true }]
    }
  }
)
