/**
 * The script of whoami's page (served as its own file, `?live.js`, so that the page's CSP
 * needs no inline script): opens a WebSocket to the page's own path through the gateway,
 * shows the identity the echo reports for the handshake, echoes a ping every 10 s, and shows
 * the close code when the socket ends (1008 when the gateway ends it with the session).
 */
export const LIVE_SCRIPT = `'use strict'
;(() => {
  const status = document.getElementById('live-status')
  const log = document.getElementById('live-log')
  const url = new URL(location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  url.search = ''
  url.hash = ''
  const socket = new WebSocket(url)
  const show = (text, good) => {
    status.textContent = text
    status.className = good ? 'live-ok' : 'live-bad'
  }
  const note = (text) => {
    const item = document.createElement('li')
    item.textContent = new Date().toISOString().slice(11, 19) + ' ' + text
    log.prepend(item)
    while (log.children.length > 10) log.lastElementChild.remove()
  }
  let timer
  socket.addEventListener('open', () => {
    show('open', true)
    const ping = () => socket.send('ping ' + Date.now())
    ping()
    timer = setInterval(ping, 10000)
  })
  socket.addEventListener('message', (event) => {
    let message = null
    try { message = JSON.parse(event.data) } catch { message = null }
    if (message && message.type === 'hello') {
      const a = message.assertion
      show(a.verified ? 'open as ' + a.identity.email + ' (assertion verified, via ' + a.identity.method + ')' : 'open, assertion not verified: ' + a.code, a.verified)
    } else {
      note('echo: ' + String(event.data).slice(0, 80))
    }
  })
  socket.addEventListener('close', (event) => {
    clearInterval(timer)
    show('closed (' + event.code + (event.reason ? ': ' + event.reason : '') + ')', false)
    note('closed with ' + event.code)
  })
})()
`
