{
  description = "Ouroboros: LLM retrieval pipeline service on Effect 4";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.nodejs_22 pkgs.postgresql_15 pkgs.redis ];
          shellHook = ''
            echo "ouroboros dev shell: node $(node --version), $(postgres --version), $(redis-server --version | cut -d' ' -f3)"
          '';
        };
      });
    };
}
