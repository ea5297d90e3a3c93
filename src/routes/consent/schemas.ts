// JSON schemas the consent routes share (the consent pages, the own-app pages, the device code
// page): an HTML answer, a redirect's empty body, no query parameters, the `:app` path parameter.

/** A page: the HTML is the body. */
export const htmlPage = { type: 'string' } as const
/** A redirect: the body is empty; the Location header says where. */
export const redirect = { type: 'string', description: 'empty body; see the Location header' } as const
/** No query parameters. */
export const noParams = { type: 'object', additionalProperties: false, properties: {} } as const
/** `/:app…`: the app's slug. */
export const appParams = {
  type: 'object',
  required: ['app'],
  additionalProperties: false,
  properties: { app: { type: 'string', minLength: 1, maxLength: 200 } },
} as const

/** The answers of a form post that starts a flow: off to Microsoft, or a failure page. */
export const flowStartResponses = {
  303: redirect,
  400: htmlPage,
  403: htmlPage,
  404: htmlPage,
  429: htmlPage,
  500: htmlPage,
  502: htmlPage,
  503: htmlPage,
  504: htmlPage,
} as const
