/** One part of a `multipart/form-data` body. @internal */
export interface Part {
  readonly name: string | undefined
  readonly filename: string | undefined
  readonly data: Buffer
}

/** A small `multipart/form-data` parser, enough for the snapshot upload a client sends. @internal */
export const parse = (body: Buffer, contentType: string | undefined): Array<Part> => {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? "")
  const token = boundary?.[1] ?? boundary?.[2]
  if (token === undefined) return []
  const delimiter = Buffer.from(`--${token}`)
  const parts: Array<Part> = []
  let start = body.indexOf(delimiter)
  while (start !== -1) {
    const partStart = start + delimiter.length
    if (body.subarray(partStart, partStart + 2).toString() === "--") break
    const next = body.indexOf(delimiter, partStart)
    if (next === -1) break
    const chunk = body.subarray(partStart + 2, next - 2) // skip the CRLF after the delimiter and before the next one
    const headerEnd = chunk.indexOf("\r\n\r\n")
    if (headerEnd !== -1) {
      const headers = chunk.subarray(0, headerEnd).toString("utf8")
      const name = /[\s;]name="([^"]*)"/i.exec(headers)?.[1]
      const filename = /filename="([^"]*)"/i.exec(headers)?.[1]
      parts.push({ name, filename, data: Buffer.from(chunk.subarray(headerEnd + 4)) })
    }
    start = next
  }
  return parts
}
