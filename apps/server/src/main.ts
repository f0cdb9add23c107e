import { main } from "./Program.js"

main()
