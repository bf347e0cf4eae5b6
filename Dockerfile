FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace packages' manifests, which npm ci links (packages/*).
COPY packages/pglite-server/package.json packages/pglite-server/
COPY packages/wait-queue/package.json packages/wait-queue/
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production
USER node
EXPOSE 5678
CMD ["node", "src/cli.ts", "start"]
